package pipeline

import (
	"github.com/krgimage/krgimage/provision"
	"github.com/krgimage/krgimage/recipes"
)

// Steps returns the steps a recipe asks for, in build order: the base
// system, the provisioning steps as the recipe lists them, the kernel, the
// initramfs, the boot server's files and the snapshot. (The boot test is
// not a step: it runs on the finished output, from build --boot-test or
// krgimage boot-test.)
//
// A packaged kernel is installed earlier: right after the last
// provisioning entry that can change its installation (kernelAfter). The
// steps after that one (users, ssh, a motd...) are what a recipe's author
// changes most, and a change to one of them must not make the stage cache
// install the kernel again. A kernel built from source keeps the seed's
// place, after the configuration, since its build may read any of it.
func Steps(r *recipes.Recipe) []BuildStep {
	steps := []BuildStep{&bootstrapStep{}}
	entries := provisionSteps(r)
	at := kernelAt(r)
	steps = append(steps, entries[:at]...)
	if r.Kernel != nil {
		steps = append(steps, &kernelStep{})
	}
	steps = append(steps, entries[at:]...)
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

// kernelAt is how many provisioning entries run before the kernel step:
// all of them, but for a packaged kernel only up to the last that can
// change its installation.
func kernelAt(r *recipes.Recipe) int {
	if r.Kernel != nil && r.Kernel.Package != "" {
		return kernelAfter(r) + 1
	}
	return len(r.Provision)
}

// early says whether the kernel is installed before provisioning entries
// that cannot change its installation.
func early(r *recipes.Recipe) bool { return kernelAt(r) < len(r.Provision) }

// kernelAfter returns the index of the last provisioning entry that can
// change a packaged kernel's installation, -1 when none can. Each step
// says whether it can (provision.Step.ChangesKernel); an entry with no
// step is taken to.
func kernelAfter(r *recipes.Recipe) int {
	last := -1
	for i, e := range r.Provision {
		if s, err := provision.New(e, &provision.Image{Recipe: r}); err != nil || s.ChangesKernel() {
			last = i
		}
	}
	return last
}
