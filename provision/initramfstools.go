package provision

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// InitramfsTools configures /etc/initramfs-tools/initramfs.conf for a
// network boot (BOOT=nfs, MODULES=netboot) in images that use
// initramfs-tools.
type InitramfsTools struct {
	Boot    string `yaml:"boot" enum:"nfs,local"`
	Modules string `yaml:"modules" enum:"most,dep,netboot,list"`
	Device  string `yaml:"device,omitempty" check:"arg"`
}

var initramfsToolsType = typeOf(func() *InitramfsTools { return &InitramfsTools{Boot: "nfs", Modules: "netboot"} }, func(c *InitramfsTools, _ *Image) Step { return initramfsTools{c} })

func (*InitramfsTools) Validate(*recipes.Validator, string) {}

// initramfsTools configures initramfs-tools for a network boot
// (InitramfsTools).
type initramfsTools struct{ cfg *InitramfsTools }

func (i initramfsTools) vars() map[string]string {
	v := map[string]string{"BOOT": i.cfg.Boot, "MODULES": i.cfg.Modules}
	if i.cfg.Device != "" {
		v["DEVICE"] = i.cfg.Device
	}
	return v
}

func (i initramfsTools) Describe() []string {
	var kv []string
	for k, v := range i.vars() {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return []string{"set " + strings.Join(kv, " ") + " in /etc/initramfs-tools/initramfs.conf (a ramdisk with network support)"}
}

func (initramfsTools) Check() error { return nil }

// Reads nothing beyond its configuration.
func (initramfsTools) Reads() ([]Input, error) { return nil, nil }

// ChangesKernel: the kernel package's hook builds the initramfs from
// these settings.
func (initramfsTools) ChangesKernel() bool { return true }

func (i initramfsTools) Apply(_ context.Context, s *chroot.Session) error {
	const conf = "/etc/initramfs-tools/initramfs.conf"
	if !s.Exists(conf) {
		return fmt.Errorf("%w: %s: install initramfs-tools in a packages step before this one", chroot.ErrMissing, conf)
	}
	return s.SetShellVars(conf, i.vars())
}
