package pipeline

import "github.com/krgimage/krgimage/recipes"

// Steps returns the steps a recipe asks for, in build order: the base
// system, the provisioning steps as the recipe lists them, the kernel, the
// initramfs, the boot server's files and the snapshot. (The boot test is
// not a step: it runs on the finished output, from build --boot-test or
// krgimage boot-test.)
func Steps(r *recipes.Recipe) []Step {
	steps := []Step{&bootstrapStep{}}
	steps = append(steps, provisionSteps(r)...)
	if r.Kernel != nil {
		steps = append(steps, &kernelStep{})
	}
	if r.Initramfs != nil {
		steps = append(steps, &initramfsStep{})
	}
	if r.Netboot != nil {
		steps = append(steps, &netbootStep{})
	}
	steps = append(steps, mediaSteps(r)...)
	if r.Outputs.Snapshot != nil {
		steps = append(steps, &snapshotStep{})
	}
	return steps
}
