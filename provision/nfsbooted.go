package provision

import (
	"context"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// Nfsbooted gives every node sharing the root its own host name (from DHCP
// or reverse DNS) and the writable areas a read-only root needs. method
// package installs lenny's nfsbooted package; native does the same with
// the suite's own means; auto picks by suite.
type Nfsbooted struct {
	Method string `yaml:"method" enum:"auto,package,native"`
}

var nfsbootedType = typeOf(func() *Nfsbooted { return &Nfsbooted{Method: "auto"} }, func(c *Nfsbooted, img *Image) Step { return nfsbooted{c, img} })

func (n *Nfsbooted) Validate(v *recipes.Validator, keyPath string) {
	if n.Method == "package" && !recipes.Legacy(v.Recipe().Suite) {
		v.Errorf(keyPath+".method", recipes.ErrConflict, "the nfsbooted package does not exist after lenny; use method: native or auto")
	}
}

// nfsbooted names each node sharing the root after its address
// (Nfsbooted): lenny's package, or the same with the suite's own
// means.
type nfsbooted struct {
	cfg *Nfsbooted
	img *Image
}

func (n nfsbooted) method() string {
	if n.cfg.Method != "auto" {
		return n.cfg.Method
	}
	if recipes.Legacy(n.img.Recipe.Suite) {
		return "package"
	}
	return "native"
}

func (n nfsbooted) Describe() []string {
	if n.method() == "package" {
		return []string{"apt-get install nfsbooted (names each node after its address on a shared NFS root)"}
	}
	return []string{
		"nfsbooted does not exist in " + n.img.Recipe.Suite + "; the same with the suite's own means:",
		"install /usr/local/sbin/krgimage-hostname, run early at boot: the node takes its name from DHCP or from its address in /etc/hosts or DNS",
		"empty /etc/machine-id: every node gets its own at boot instead of sharing the image's",
	}
}

func (nfsbooted) Check() error { return nil }

// Reads nothing beyond the recipe context, which holds the suite.
func (nfsbooted) Reads() ([]Input, error) { return nil, nil }

// ChangesKernel: a node's name and machine id are decided at boot. (The
// lenny package installs nothing a kernel reads.)
func (nfsbooted) ChangesKernel() bool { return false }

func (n nfsbooted) Apply(ctx context.Context, s *chroot.Session) error {
	if n.method() == "package" {
		return s.Install(ctx, []string{"nfsbooted"}, false)
	}
	if err := bootScript(ctx, s, "krgimage-hostname", hostnameScript, hostnameUnit, "Name this diskless node after its address", "hostname"); err != nil {
		return err
	}
	// An empty machine-id makes systemd (and D-Bus) create one per node
	// at boot; dbus's own copy, when it is a file, would be shared.
	if err := s.WriteFile("/etc/machine-id", nil, 0o444, "root", "root"); err != nil {
		return err
	}
	if b, err := s.ReadFile("/var/lib/dbus/machine-id"); err == nil && b != nil {
		if fi, err := s.Lstat("/var/lib/dbus/machine-id"); err == nil && fi.Mode().IsRegular() {
			return s.Symlink("/etc/machine-id", "/var/lib/dbus/machine-id")
		}
	}
	return nil
}

const hostnameScript = `#!/bin/sh
# Installed by krgimage. Nodes share one root filesystem, so each takes its
# name from its own address, as lenny's nfsbooted did: the kernel's DHCP
# client may already have set it; otherwise the node's IPv4 address is
# resolved through /etc/hosts (written from the cluster inventory) or DNS.
current=$(hostname 2>/dev/null || true)
case "$current" in
""|"(none)"|localhost|localhost.*) ;;
*) exit 0 ;;
esac
addrs=$(hostname -I 2>/dev/null) ||
	addrs=$(ip -4 -o addr show scope global 2>/dev/null | sed -n 's/.* inet \([0-9.]*\)\/.*/\1/p')
for addr in $addrs; do
	name=$(getent hosts "$addr" | awk '{ print $2; exit }')
	if [ -n "$name" ]; then
		hostname "${name%%.*}"
		exit 0
	fi
done
exit 0
`

const hostnameUnit = `[Unit]
Description=Name this diskless node after its address (krgimage)
DefaultDependencies=no
After=systemd-remount-fs.service
Before=sysinit.target systemd-hostnamed.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/krgimage-hostname
RemainAfterExit=yes

[Install]
WantedBy=sysinit.target
`
