package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/internal/testfixture"
	"github.com/krgimage/krgimage/recipes"
)

func testImage(t *testing.T, root string, r *recipes.Recipe) *chroot.Image {
	t.Helper()
	log := logging.Discard()
	if testing.Verbose() {
		log, _ = logging.New(os.Stderr, logging.Text, true)
	}
	return &chroot.Image{
		Root: root, Recipe: r, Mirror: testfixture.Mirror(t), Log: log, Runner: run.New(log),
		LookupEnv: func(k string) (string, bool) {
			v, ok := map[string]string{"ROOT_HASH": "$6$rounds=5000$salt$hashhashhash"}[k]
			return v, ok
		},
		BuildTime: time.Unix(1700000000, 0),
	}
}

// provisionRecipe uses every step type, against a bookworm root.
const provisionRecipe = `name: provision-test
suite: bookworm
variant: minbase
cluster:
  domain: lab.home
  server: {name: boot, ip: 10.9.0.1}
  subnet: 10.9.0.0/24
  nodes:
    - {name: n1, ip: 10.9.0.11}
    - {name: n2, ip: 10.9.0.12}
nfsroot:
  path: /srv/nfsroot/test
  mode: ro
provision:
  - apt-sources
  - packages: [openssh-server, initramfs-tools-core]
  - root-password: {env: ROOT_HASH}
  - users:
      - name: krg
        uid: 1500
        groups: [users, sudo]
        comment: Kerrighed user
        password_hash: '$y$j9T$abc$def'
        ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITest test@boot"]
  - hosts
  - mtab
  - fstab: {configfs: false}
  - rcs
  - initramfs-tools
  - locale
  - nfsbooted
  - ssh: {permit_root_login: prohibit-password}
  - run:
      env: {GREETING: hello}
      script: |
        echo "$GREETING from $(cat /etc/debian_version)" > /etc/greeting
  - run: {chroot: false, script: 'echo host > "$ROOT/etc/from-host"'}
  - files: [{src: motd, dst: /etc/motd, mode: "0640", owner: krg, group: users}, {src: tree, dst: /opt/tree}]
  - write: {path: /etc/node-role, content: "compute\n", mode: "0600"}
`

func loadTestRecipe(t *testing.T, src string) *recipes.Recipe {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "motd"), []byte("Kerrighed node\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "tree/sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree/sub/x.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("sub/x.sh", filepath.Join(dir, "tree/link"))
	p := filepath.Join(dir, "r.yaml")
	os.WriteFile(p, []byte(src), 0o644)
	r, err := recipes.Load(p, recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func applyAll(t *testing.T, img *chroot.Image) {
	t.Helper()
	for _, e := range img.Recipe.Provision {
		st, err := New(e, img)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Check(); err != nil {
			t.Fatalf("%s: Check: %v", e.Type, err)
		}
		s, err := chroot.Open(t.Context(), img)
		if err != nil {
			t.Fatal(err)
		}
		err = st.Apply(t.Context(), s)
		if cerr := s.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			t.Fatalf("%s: %v", e.Type, err)
		}
	}
}

func inChroot(t *testing.T, img *chroot.Image, script string) string {
	t.Helper()
	s, err := chroot.Open(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Output(t.Context(), "sh", "-c", script)
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return strings.TrimSpace(string(out))
}

func TestProvisionAllSteps(t *testing.T) {
	root := testfixture.Root(t, testfixture.Bookworm)
	img := testImage(t, root, loadTestRecipe(t, provisionRecipe))
	applyAll(t, img)
	first := treeSums(t, root)

	checks := []struct{ script, want string }{
		{"getent passwd krg", "krg:x:1500:1500:Kerrighed user:/home/krg:/bin/bash"},
		{"id -nG krg", "krg sudo users"},
		{"getent shadow root | cut -d: -f2", "$6$rounds=5000$salt$hashhashhash"},
		{"getent shadow krg | cut -d: -f2", "$y$j9T$abc$def"},
		{"stat -c '%a %U' /home/krg/.ssh /home/krg/.ssh/authorized_keys", "700 krg\n600 krg"},
		{"readlink /etc/mtab", "/proc/mounts"},
		{"dpkg-query -W -f '${Status}' openssh-server", "install ok installed"},
		{"apt-cache policy openssh-server | sed -n 's/^ *Installed: //p' | grep -c .", "1"},
		{"getent hosts n2", "10.9.0.12       n2.lab.home n2"},
		{"cat /etc/hostname | wc -c", "0"},
		{"grep -E '^(BOOT|MODULES)=' /etc/initramfs-tools/initramfs.conf", "MODULES=netboot\nBOOT=nfs"},
		{"tail -n1 /root/.bashrc", "export LC_ALL=C"},
		{"ls /etc/ssh/ | grep -c ssh_host_ || true", "0"},
		{"cat /etc/ssh/sshd_config.d/krgimage.conf", "# Written by krgimage.\nHostKey /var/run/krgimage-ssh/ssh_host_rsa_key\nHostKey /var/run/krgimage-ssh/ssh_host_ecdsa_key\nHostKey /var/run/krgimage-ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password"},
		{"readlink /etc/systemd/system/ssh.service.requires/krgimage-ssh-hostkeys.service", "/etc/systemd/system/krgimage-ssh-hostkeys.service"},
		{"readlink /etc/systemd/system/sysinit.target.wants/krgimage-hostname.service", "/etc/systemd/system/krgimage-hostname.service"},
		{"wc -c < /etc/machine-id", "0"},
		{"cat /etc/greeting", "hello from " + strings.TrimSpace(readFile(t, root, "etc/debian_version"))},
		{"cat /etc/from-host", "host"},
		{"stat -c '%a %U %G' /etc/motd /etc/node-role /opt/tree/sub/x.sh", "640 krg users\n600 root root\n755 root root"},
		{"readlink /opt/tree/link", "sub/x.sh"},
		{"test -d /var && test -d /root && echo ok", "ok"},
	}
	for _, c := range checks {
		if got := inChroot(t, img, c.script); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.script, got, c.want)
		}
	}
	fstab := readFile(t, root, "etc/fstab")
	if !strings.Contains(fstab, "10.9.0.1:/srv/nfsroot/test/var\t/var\tnfs\trw,hard,nolock\t0\t0") {
		t.Errorf("fstab:\n%s", fstab)
	}
	// Installing openssh-server must not have started sshd.
	if pids := testfixture.Contained(); len(pids) > 0 {
		t.Errorf("processes running inside the image after provisioning: %v", pids)
	}
	// The boot scripts are valid shell.
	for _, p := range []string{"/usr/local/sbin/krgimage-hostname", "/usr/local/sbin/krgimage-ssh-hostkeys"} {
		inChroot(t, img, "sh -n "+p+" && echo ok")
	}
	testfixture.AssertNoMounts(t, root)

	// Idempotent: a second run leaves the same tree.
	applyAll(t, img)
	second := treeSums(t, root)
	for p, sum := range first {
		if second[p] != sum {
			t.Errorf("%s changed on the second run: %s -> %s", p, sum, second[p])
		}
	}
	for p := range second {
		if _, ok := first[p]; !ok {
			t.Errorf("%s appeared on the second run", p)
		}
	}
}

func readFile(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// treeSums describes every path of a tree by type, mode, owner and content,
// leaving out what APT and dpkg rewrite on every run.
func treeSums(t *testing.T, root string) map[string]string {
	t.Helper()
	volatile := []string{"var/lib/apt/lists", "var/cache", "var/log", "var/lib/dpkg/status-old", "var/lib/dpkg/lock", "var/lib/dpkg/triggers/Lock",
		"var/lib/apt/extended_states", "etc/shadow-", "etc/gshadow-", "etc/passwd-", "etc/group-", "etc/subuid-", "etc/subgid-", "var/lib/systemd/deb-systemd-helper-enabled"}
	sums := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		for _, v := range volatile {
			if r == v || strings.HasPrefix(r, v+"/") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(h[:8])
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		sums[r] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func TestProvisionErrors(t *testing.T) {
	root := testfixture.Root(t, testfixture.Bookworm)
	outside := t.TempDir()
	canary := filepath.Join(outside, "canary")
	os.WriteFile(canary, []byte("untouched"), 0o644)
	// An absolute symlink inside the image pointing at a host directory.
	os.Symlink(outside, filepath.Join(root, "etc/evil"))
	tests := []struct {
		name  string
		steps string
		want  error
		text  string
		check bool // the error comes from Check, before anything runs
	}{
		{"unknown group", "- users: [{name: a, groups: [wheel]}]", chroot.ErrNoSuchGroup, "wheel", false},
		{"uid of an image user", "- users: [{name: newbie, uid: 1}]", ErrClash, "uid 1 already belongs to daemon", false},
		{"user with another uid", "- users: [{name: daemon, uid: 4242}]", ErrClash, "already exists with uid 1", false},
		{"missing files source", "- files: [{src: nope, dst: /etc/nope}]", chroot.ErrMissing, "nope", true},
		{"destination through an absolute symlink", "- files: [{src: motd, dst: /etc/evil/canary}]", chroot.ErrUnsafePath, "/etc/evil/canary", false},
		{"write through an absolute symlink", "- write: {path: /etc/evil/canary, content: pwned}", chroot.ErrUnsafePath, "/etc/evil/canary", false},
		{"no such package", "- packages: [krgimage-no-such-package, also-missing-pkg]", chroot.ErrNoSuchPackage, "krgimage-no-such-package, also-missing-pkg", false},
		{"failing script", "- run: {script: 'echo about to fail; exit 3'}", nil, "about to fail", false},
		{"missing password variable", "- root-password: {env: NOT_SET_ANYWHERE}", chroot.ErrMissing, "$NOT_SET_ANYWHERE is not set", false},
		{"initramfs-tools absent", "- initramfs-tools", chroot.ErrMissing, "install initramfs-tools", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := loadTestRecipe(t, "suite: bookworm\nprovision:\n  "+tt.steps+"\n")
			img := testImage(t, root, r)
			st, err := New(r.Provision[0], img)
			if err != nil {
				t.Fatal(err)
			}
			err = st.Check()
			if !tt.check && err == nil {
				var s *chroot.Session
				s, err = chroot.Open(t.Context(), img)
				if err != nil {
					t.Fatal(err)
				}
				err = st.Apply(t.Context(), s)
				s.Close()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not mention %q", err, tt.text)
			}
			if b, _ := os.ReadFile(canary); string(b) != "untouched" {
				t.Fatalf("the host file outside the image was changed: %q", b)
			}
			entries, _ := os.ReadDir(outside)
			if len(entries) != 1 {
				t.Errorf("files appeared outside the image: %v", entries)
			}
			testfixture.AssertNoMounts(t, root)
		})
	}
}
