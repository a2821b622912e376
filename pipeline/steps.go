package pipeline

import (
	"fmt"

	"github.com/krgimage/krgimage/recipes"
)

// Steps returns the steps a recipe asks for, in build order. unsupported
// lists the recipe sections this version of krgimage parses and validates
// but cannot build yet, each with its line.
func Steps(r *recipes.Recipe) (steps []Step, unsupported []string) {
	steps = append(steps, &bootstrapStep{})
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
	later := func(label, keyPath string) {
		unsupported = append(unsupported, fmt.Sprintf("%s (line %d)", label, r.Pos(keyPath).Line))
	}
	if r.BootTest != nil {
		later("boot_test", "boot_test")
	}
	if r.Outputs.Snapshot != nil {
		later("outputs.snapshot", "outputs.snapshot")
	}
	return steps, unsupported
}
