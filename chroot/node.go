package chroot

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/krgimage/krgimage/recipes"
)

// Nodes share one root, so what makes a node itself (its name, its SSH
// host keys, its machine id) must be decided at boot, not in the image.
// These steps install small boot-time scripts for that, run by systemd or,
// on older suites, by sysvinit.

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

// sysvScript wraps a boot script for sysvinit suites.
func sysvScript(name, desc, before, run string) string {
	return fmt.Sprintf(`#!/bin/sh
### BEGIN INIT INFO
# Provides:          %[1]s
# Required-Start:    $local_fs
# Required-Stop:
# X-Start-Before:    %[3]s
# Default-Start:     S
# Default-Stop:
# Short-Description: %[2]s
### END INIT INFO
# Installed by krgimage.
case "$1" in
start) %[4]s ;;
stop|restart|force-reload|status) ;;
*) echo "Usage: $0 start" >&2; exit 3 ;;
esac
exit 0
`, name, desc, before, run)
}

// bootScript installs /usr/local/sbin/NAME and runs it at boot.
func bootScript(ctx context.Context, s *Session, name, script, unit, desc, before string) error {
	if err := s.WriteFile("/usr/local/sbin/"+name, []byte(script), 0o755, "root", "root"); err != nil {
		return err
	}
	if recipes.Systemd(s.Recipe.Suite) {
		unitPath := "/etc/systemd/system/" + name + ".service"
		if err := s.WriteFile(unitPath, []byte(unit), 0o644, "root", "root"); err != nil {
			return err
		}
		// What systemctl enable would do, without needing systemd to run.
		for _, l := range strings.Split(unit, "\n") {
			for _, key := range []string{"WantedBy=", "RequiredBy="} {
				if target, ok := strings.CutPrefix(l, key); ok {
					dir := "/etc/systemd/system/" + target + map[string]string{"WantedBy=": ".wants", "RequiredBy=": ".requires"}[key]
					if err := s.Symlink(unitPath, path.Join(dir, name+".service")); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := s.WriteFile("/etc/init.d/"+name, []byte(sysvScript(name, desc, before, "/usr/local/sbin/"+name)), 0o755, "root", "root"); err != nil {
		return err
	}
	return s.Run(ctx, "update-rc.d", name, "defaults")
}

type nfsbooted struct {
	cfg *recipes.Nfsbooted
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

func (n nfsbooted) Apply(ctx context.Context, s *Session) error {
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
		if r, _ := rel("/var/lib/dbus/machine-id"); r != "" {
			if fi, err := s.FS().Lstat(r); err == nil && fi.Mode().IsRegular() {
				return s.Symlink("/etc/machine-id", "/var/lib/dbus/machine-id")
			}
		}
	}
	return nil
}

// keyTypes are the host key types a suite's OpenSSH generates.
func keyTypes(suite string) []string {
	if recipes.Legacy(suite) {
		return []string{"rsa", "dsa"}
	}
	return []string{"rsa", "ecdsa", "ed25519"}
}

// hostKeyDir is where sshd reads the node's keys: /var/run is a tmpfs on a
// lenny node and a link to /run on current ones.
const hostKeyDir = "/var/run/krgimage-ssh"

func sshKeysScript(types []string) string {
	return `#!/bin/sh
# Installed by krgimage. Nodes share one root, so their SSH host keys cannot
# live in it. Each node keeps its own under /var/lib/krgimage/ssh/HOSTNAME
# when /var is writable (so they survive reboots), or makes new ones at each
# boot, and sshd reads them from ` + hostKeyDir + `.
run=` + hostKeyDir + `
mkdir -p "$run" && chmod 700 "$run"
store=/var/lib/krgimage/ssh/$(hostname)
if mkdir -p "$store" 2>/dev/null && touch "$store/.w" 2>/dev/null; then
	rm -f "$store/.w"
	chmod 700 "$store"
else
	store=$run
fi
for type in ` + strings.Join(types, " ") + `; do
	key=$store/ssh_host_${type}_key
	[ -s "$key" ] || ssh-keygen -q -t "$type" -N "" -C "root@$(hostname)" -f "$key" || continue
	[ "$store" = "$run" ] || cp -p "$key" "$key.pub" "$run/"
done
exit 0
`
}

const sshKeysUnit = `[Unit]
Description=Give this diskless node its own SSH host keys (krgimage)
After=local-fs.target remote-fs.target
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/krgimage-ssh-hostkeys
RemainAfterExit=yes

[Install]
RequiredBy=ssh.service
`

type ssh struct {
	cfg *recipes.SSH
	img *Image
}

func (x ssh) Describe() []string {
	out := []string{"install openssh-server if it is missing"}
	if x.cfg.HostKeys == "fixed" {
		out = append(out, "keep the image's host keys: every node shares them (host_keys: fixed)")
	} else {
		out = append(out,
			"remove the image's host keys: nodes sharing a root must not share a host key",
			"install /usr/local/sbin/krgimage-ssh-hostkeys, run before sshd: each node gets its own "+strings.Join(keyTypes(x.img.Recipe.Suite), ", ")+" keys in "+hostKeyDir)
	}
	if x.cfg.PermitRootLogin != "" {
		out = append(out, "PermitRootLogin "+x.cfg.PermitRootLogin)
	}
	return out
}

func (ssh) Check() error { return nil }

func (x ssh) Apply(ctx context.Context, s *Session) error {
	if !s.Exists("/usr/sbin/sshd") {
		if err := s.Install(ctx, []string{"openssh-server"}, false); err != nil {
			return err
		}
	}
	var settings []string
	if x.cfg.HostKeys == "fixed" {
		if err := s.Run(ctx, "ssh-keygen", "-A"); err != nil {
			return err
		}
	} else {
		keys, err := s.Glob("/etc/ssh", "ssh_host_*key*")
		if err != nil {
			return err
		}
		if err := s.Remove(keys...); err != nil {
			return err
		}
		types := keyTypes(s.Recipe.Suite)
		for _, t := range types {
			settings = append(settings, "HostKey "+hostKeyDir+"/ssh_host_"+t+"_key")
		}
		if err := bootScript(ctx, s, "krgimage-ssh-hostkeys", sshKeysScript(types), sshKeysUnit, "Give this node its own SSH host keys", "ssh"); err != nil {
			return err
		}
	}
	if x.cfg.PermitRootLogin != "" {
		settings = append(settings, "PermitRootLogin "+x.cfg.PermitRootLogin)
	}
	return sshdSettings(s, settings)
}

// sshdSettings puts settings where sshd reads them first: a drop-in where
// sshd_config includes sshd_config.d, else sshd_config itself, with the
// image's own HostKey lines commented out.
func sshdSettings(s *Session, settings []string) error {
	const dropIn = "/etc/ssh/sshd_config.d/krgimage.conf"
	conf, err := s.ReadFile("/etc/ssh/sshd_config")
	if err != nil {
		return err
	}
	if len(settings) == 0 {
		return s.Remove(dropIn)
	}
	body := "# Written by krgimage.\n" + strings.Join(settings, "\n") + "\n"
	if strings.Contains(string(conf), "Include /etc/ssh/sshd_config.d/") {
		return s.WriteFile(dropIn, []byte(body), 0o644, "root", "root")
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(conf), "\n"), "\n") {
		if l == "# Written by krgimage." {
			break // a previous run's block: replaced below
		}
		key, _, _ := strings.Cut(strings.TrimSpace(l), " ")
		for _, s := range settings {
			if k, _, _ := strings.Cut(s, " "); strings.EqualFold(key, k) {
				l = "#" + l
				break
			}
		}
		out = append(out, l)
	}
	return s.WriteFile("/etc/ssh/sshd_config", []byte(strings.Join(out, "\n")+"\n"+body), 0o644, "root", "root")
}
