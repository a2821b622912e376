package pipeline

import (
	"strings"
	"testing"
)

// TestStepsOrder: a packaged kernel goes right after the last packages
// entry, a kernel built from source after every provisioning step.
func TestStepsOrder(t *testing.T) {
	for _, tt := range []struct {
		name, provision, kernel, want string
		// early: the kernel moved before later provisioning steps.
		early bool
	}{
		{"packaged kernel after the packages", "[apt-sources, {packages: [less]}, mtab, rcs]", "{package: linux-image-amd64}",
			"bootstrap apt-sources packages kernel mtab rcs initramfs", true},
		{"after the last packages entry", "[{packages: [less]}, mtab, {packages: [vim-tiny]}, rcs]", "{package: linux-image-amd64}",
			"bootstrap packages mtab packages#2 kernel rcs initramfs", true},
		{"no packages entry", "[mtab, rcs]", "{package: linux-image-amd64}",
			"bootstrap mtab rcs kernel initramfs", false},
		{"built from source: the seed's place", "[{packages: [less]}, mtab]", "{source: /src/kerrighed.tar.gz}",
			"bootstrap packages mtab kernel initramfs", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := parseRecipe(t, "name: order\nsuite: bookworm\nprovision: "+tt.provision+"\nkernel: "+tt.kernel+"\ninitramfs: {generator: native}\n", nil)
			var names []string
			for _, s := range Steps(r) {
				names = append(names, s.Name())
			}
			if got := strings.Join(names, " "); got != tt.want {
				t.Errorf("steps: %s\nwant   %s", got, tt.want)
			}
			// The plan says why the kernel is where it is.
			plan := strings.Join((&kernelStep{}).Describe(&Env{Recipe: r, FinalRoot: "/image"}), "\n")
			if says := strings.Contains(plan, "right after the last packages entry"); says != tt.early {
				t.Errorf("the kernel's plan says it comes after the packages: %v, want %v:\n%s", says, tt.early, plan)
			}
		})
	}
}
