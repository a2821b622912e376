package provision

import (
	"context"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// SSH sets up openssh-server for a shared root. host_keys per-node (the
// default) removes the image's host keys and has each node generate its
// own at boot, since nodes sharing one root must not share a host key;
// fixed keeps the image's keys for every node.
type SSH struct {
	HostKeys        string `yaml:"host_keys" enum:"per-node,fixed"`
	PermitRootLogin string `yaml:"permit_root_login,omitempty" enum:"yes,no,prohibit-password"`
}

var sshType = typeOf(func() *SSH { return &SSH{HostKeys: "per-node"} }, func(c *SSH, img *Image) Step { return ssh{c, img} })

func (*SSH) Validate(*recipes.Validator, string) {}

// ssh sets up openssh-server for a shared root (SSH): per-node
// host keys made at boot, or the image's kept.
type ssh struct {
	cfg *SSH
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

// Reads nothing beyond the recipe context, which holds the suite.
func (ssh) Reads() ([]Input, error) { return nil, nil }

// ChangesKernel: sshd's configuration and host keys are nothing a kernel
// package reads.
func (ssh) ChangesKernel() bool { return false }

func (x ssh) Apply(ctx context.Context, s *chroot.Session) error {
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

// sshdSettings puts settings where sshd reads them first: a drop-in where
// sshd_config includes sshd_config.d, else sshd_config itself, with the
// image's own HostKey lines commented out.
func sshdSettings(s *chroot.Session, settings []string) error {
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
