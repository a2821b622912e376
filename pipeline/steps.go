package pipeline

import "github.com/krgimage/krgimage/recipes"

// Steps returns the steps a recipe asks for, in build order: the base
// system, the provisioning steps as the recipe lists them, the kernel, the
// initramfs, the boot server's files and the snapshot. (The boot test is
// not a step: it runs on the finished output, from build --boot-test or
// krgimage boot-test.)
//
// A packaged kernel is installed right after the last packages entry
// instead: it is one more package, and the provisioning steps that
// follow (users, files, ssh...) are what a recipe's author changes most:
// a change to one of them must not make the stage cache reinstall the
// kernel. A kernel built from source keeps the seed's place, after
// the configuration, since its build may read what provisioning wrote.
func Steps(r *recipes.Recipe) []Step {
	steps := []Step{&bootstrapStep{}}
	provision := provisionSteps(r)
	at := len(provision)
	if afterPackages(r) {
		at = lastPackages(r) + 1
	}
	steps = append(steps, provision[:at]...)
	if r.Kernel != nil {
		steps = append(steps, &kernelStep{})
	}
	steps = append(steps, provision[at:]...)
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

// afterPackages says whether the kernel step goes right after the last
// packages entry.
func afterPackages(r *recipes.Recipe) bool {
	return r.Kernel != nil && r.Kernel.Package != "" && lastPackages(r) >= 0
}

func lastPackages(r *recipes.Recipe) int {
	last := -1
	for i, e := range r.Provision {
		if e.Type == "packages" {
			last = i
		}
	}
	return last
}
