package pipeline

import (
	"strings"
	"testing"
)

// TestStepsOrder: a packaged kernel goes right after the last
// provisioning entry that can change its installation, a kernel built from
// source after every provisioning step.
func TestStepsOrder(t *testing.T) {
	for _, tt := range []struct {
		name, provision, kernel, want string
		// early: the kernel moved before later provisioning steps.
		early bool
	}{
		{"after the packages", "[apt-sources, {packages: [less]}, mtab, rcs]", "{package: linux-image-amd64}",
			"bootstrap apt-sources packages kernel mtab rcs initramfs", true},
		{"after the last packages entry", "[{packages: [less]}, mtab, {packages: [vim-tiny]}, rcs]", "{package: linux-image-amd64}",
			"bootstrap packages mtab packages#2 kernel rcs initramfs", true},
		{"nothing it depends on", "[mtab, rcs]", "{package: linux-image-amd64}",
			"bootstrap kernel mtab rcs initramfs", true},
		{"after the sources", "[{packages: [less]}, mtab, apt-sources, rcs]", "{package: linux-image-amd64}",
			"bootstrap packages mtab apt-sources kernel rcs initramfs", true},
		{"after initramfs-tools settings", "[{packages: [less]}, initramfs-tools, mtab]", "{package: linux-image-amd64}",
			"bootstrap packages initramfs-tools kernel mtab initramfs", true},
		{"after a write to its configuration", `[{packages: [less]}, mtab, {write: {path: /etc/kernel-img.conf, content: "do_symlinks = no\n"}}, rcs]`,
			"{package: linux-image-amd64}", "bootstrap packages mtab write kernel rcs initramfs", true},
		{"before a write elsewhere", `[{packages: [less]}, {write: {path: /etc/motd, content: "hi\n"}}, rcs]`, "{package: linux-image-amd64}",
			"bootstrap packages kernel write rcs initramfs", true},
		{"after files copied over /etc", "[{packages: [less]}, {files: [{src: etc, dst: /etc}]}, rcs]", "{package: linux-image-amd64}",
			"bootstrap packages files kernel rcs initramfs", true},
		{"after a script", "[{packages: [less]}, ssh, {run: {script: 'true'}}]", "{package: linux-image-amd64}",
			"bootstrap packages ssh run kernel initramfs", false},
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
			if says := strings.Contains(plan, "after the last provisioning entry that can change its installation"); says != tt.early {
				t.Errorf("the kernel's plan explains an early place: %v, want %v:\n%s", says, tt.early, plan)
			}
		})
	}
}
