package chroot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/recipes"
)

// TestMain doubles as a small "krgimage" for the leak tests: started with
// CHROOT_TEST_BLOCK=ROOT it opens a session on ROOT and runs a command
// that never ends, until it is signalled or killed.
func TestMain(m *testing.M) {
	if root := os.Getenv("CHROOT_TEST_BLOCK"); root != "" {
		os.Exit(blockInChroot(root))
	}
	os.Exit(m.Run())
}

func blockInChroot(root string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log, _ := logging.New(os.Stderr, logging.Text, true)
	img := &Image{Root: root, Recipe: &recipes.Recipe{Name: "t", Suite: "bookworm"}, Log: log, Runner: run.New(log)}
	s, err := Open(ctx, img)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	fmt.Fprintln(os.Stderr, "session open")
	err = s.Run(ctx, "sh", "-c", `echo in""side; exec sleep 600`)
	if cerr := s.Close(); cerr != nil {
		fmt.Fprintln(os.Stderr, "close:", cerr)
		return 4
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func testImage(t *testing.T, root string, r *recipes.Recipe) *Image {
	t.Helper()
	log := logging.Discard()
	if testing.Verbose() {
		log, _ = logging.New(os.Stderr, logging.Text, true)
	}
	return &Image{
		Root: root, Recipe: r, Mirror: testenv.Mirror(t), Log: log, Runner: run.New(log),
		LookupEnv: func(k string) (string, bool) {
			v, ok := map[string]string{"ROOT_HASH": "$6$rounds=5000$salt$hashhashhash"}[k]
			return v, ok
		},
		BuildTime: time.Unix(1700000000, 0),
	}
}

func TestSession(t *testing.T) {
	root := testenv.Root(t, testenv.Bookworm)
	os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte("nameserver 192.0.2.53 # the image's\n"), 0o644)
	t.Setenv("KRGIMAGE_HOST_ONLY", "leak")
	img := testImage(t, root, &recipes.Recipe{Name: "t", Suite: "bookworm"})
	img.HostResolvConf = filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(img.HostResolvConf, []byte("nameserver 192.0.2.1 # the host's\n"), 0o644)
	s, err := Open(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Output(t.Context(), "sh", "-c", "env; echo ---; cat /etc/resolv.conf; echo ---; ls /dev; echo ---; cut -d' ' -f5 /proc/self/mountinfo; echo ---; /usr/sbin/policy-rc.d; echo rc=$?")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(out), "---\n")
	if len(parts) != 5 {
		t.Fatalf("output = %s", out)
	}
	env, resolv, dev, mnt, policy := parts[0], parts[1], parts[2], parts[3], parts[4]
	if strings.Contains(env, "KRGIMAGE_HOST_ONLY") || !strings.Contains(env, "LC_ALL=C\n") || !strings.Contains(env, "DEBIAN_FRONTEND=noninteractive") {
		t.Errorf("environment inside the chroot:\n%s", env)
	}
	if !strings.Contains(resolv, "the host's") {
		t.Errorf("resolv.conf during the session = %q", resolv)
	}
	for _, d := range []string{"null", "zero", "urandom", "pts", "ptmx", "shm"} {
		if !strings.Contains(dev, d+"\n") {
			t.Errorf("/dev lacks %s:\n%s", d, dev)
		}
	}
	if strings.Contains(dev, "vda") || strings.Contains(dev, "sda") {
		t.Errorf("host disks visible in the chroot's /dev:\n%s", dev)
	}
	for _, m := range []string{"/proc\n", "/sys\n", "/dev\n", "/dev/pts\n"} {
		if !strings.Contains(mnt, m) {
			t.Errorf("%s not mounted inside:\n%s", m, mnt)
		}
	}
	if !strings.Contains(policy, "rc=101") {
		t.Errorf("policy-rc.d: %q", policy)
	}
	testenv.AssertNoMounts(t, root) // the mounts exist only in the helper's namespace
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf")); !strings.Contains(string(b), "the image's") {
		t.Errorf("resolv.conf after Close = %q", b)
	}
	if _, err := os.Lstat(filepath.Join(root, "usr/sbin/policy-rc.d")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("policy-rc.d left in the image")
	}
	var e *run.Error
	err = s.Run(t.Context(), "sh", "-c", "echo the reason >&2; exit 7")
	if !errors.As(err, &e) || e.ExitCode != 7 || !strings.Contains(err.Error(), "the reason") || !strings.Contains(err.Error(), "chroot "+root) {
		t.Errorf("failing command: %v", err)
	}
}

// With SuppressSync, fsync inside the image answers 0 without syncing:
// fsync of a pipe, which the kernel refuses (EINVAL), then succeeds.
func TestSuppressSync(t *testing.T) {
	root := testenv.Root(t, testenv.Bookworm)
	fsyncPipe := []string{"perl", "-MIO::Handle", "-e", "pipe(R, W) or die; exit(W->sync ? 0 : 1)"}
	for _, suppress := range []bool{false, true} {
		img := testImage(t, root, &recipes.Recipe{Name: "t", Suite: "bookworm"})
		img.SuppressSync = suppress
		s, err := Open(t.Context(), img)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Run(t.Context(), fsyncPipe...)
		if cerr := s.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		if suppress != (err == nil) {
			t.Errorf("SuppressSync %v: fsync of a pipe: %v", suppress, err)
		}
	}
	if err := exec.Command(fsyncPipe[0], fsyncPipe[1:]...).Run(); err == nil {
		t.Error("fsync of a pipe succeeded in this process's children: the filter leaked")
	}
}

// A session left open by a crash is recovered by the next one.
func TestSessionRecovers(t *testing.T) {
	root := testenv.Root(t, testenv.Bookworm)
	os.WriteFile(filepath.Join(root, "etc/resolv.conf"+savedSuffix), []byte("nameserver 192.0.2.9 # original\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte("nameserver 192.0.2.1 # stale copy\n"), 0o644)
	s, err := Open(t.Context(), testImage(t, root, &recipes.Recipe{Name: "t", Suite: "bookworm"}))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if b, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf")); !strings.Contains(string(b), "original") {
		t.Errorf("resolv.conf = %q, want the original back", b)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/resolv.conf"+savedSuffix)); err == nil {
		t.Error("saved copy left behind")
	}
}

// startBlocker runs this test binary as a "krgimage" blocked inside a
// chroot, and returns once the chrooted command runs.
func startBlocker(t *testing.T, root string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CHROOT_TEST_BLOCK="+root)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 64*1024)
	var seen strings.Builder
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(seen.String(), "inside") {
		if time.Now().After(deadline) {
			t.Fatalf("the blocker never started:\n%s", seen.String())
		}
		n, err := out.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			t.Fatalf("blocker: %v\n%s", err, seen.String())
		}
	}
	go func() {
		for {
			if _, err := out.Read(buf); err != nil {
				return
			}
		}
	}()
	return cmd
}

// chrooted lists the processes whose root is dir.
// contained maps the live processes descended from this test that run
// in a PID namespace other than ours (what the chroot helper started) to
// their namespace. From the host, a pivoted process's root reads as "/",
// so the image cannot be told by its path.
func contained() map[int]string {
	self, _ := os.Readlink("/proc/self/ns/pid")
	procs := processes()
	out := map[int]string{}
	for pid, p := range procs {
		if p.ns == self || p.zombie {
			continue
		}
		for a := p.ppid; a > 1; a = procs[a].ppid {
			if a == os.Getpid() {
				out[pid] = p.ns
				break
			}
		}
	}
	return out
}

// aliveIn lists the live processes in any of the namespaces of seen,
// whoever their parent is now.
func aliveIn(seen map[int]string) []int {
	want := map[string]bool{}
	for _, ns := range seen {
		want[ns] = true
	}
	var pids []int
	for pid, p := range processes() {
		if want[p.ns] && !p.zombie {
			pids = append(pids, pid)
		}
	}
	return pids
}

type process struct {
	ppid   int
	ns     string
	zombie bool
}

func processes() map[int]process {
	procs := map[int]process{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		// pid (comm) state ppid ...: comm may hold spaces, the last ")" ends it.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ns, _ := os.Readlink("/proc/" + e.Name() + "/ns/pid")
		procs[pid] = process{ppid: ppid, ns: ns, zombie: f[0] == "Z"}
	}
	return procs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestKilledLeavesNoMount(t *testing.T) {
	root := testenv.Root(t, testenv.Bookworm)
	cmd := startBlocker(t, root)
	inside := contained()
	if len(inside) == 0 {
		t.Fatal("no process runs inside the image")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	testenv.AssertNoMounts(t, root)
	waitFor(t, "chrooted processes to die with krgimage", func() bool { return len(aliveIn(inside)) == 0 })
}

func TestInterruptedUnwinds(t *testing.T) {
	root := testenv.Root(t, testenv.Bookworm)
	cmd := startBlocker(t, root)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("blocker exited with %v, want status 1 (interrupted)", err)
	}
	testenv.AssertNoMounts(t, root)
	if len(contained()) != 0 {
		t.Error("processes still run inside the image")
	}
	if _, err := os.Lstat(filepath.Join(root, "usr/sbin/policy-rc.d")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("an interrupted session left policy-rc.d in the image")
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

func applyAll(t *testing.T, img *Image) {
	t.Helper()
	for _, e := range img.Recipe.Provision {
		st, err := New(e, img)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Check(); err != nil {
			t.Fatalf("%s: Check: %v", e.Type, err)
		}
		s, err := Open(t.Context(), img)
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

func inChroot(t *testing.T, img *Image, script string) string {
	t.Helper()
	s, err := Open(t.Context(), img)
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
	root := testenv.Root(t, testenv.Bookworm)
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
	if pids := contained(); len(pids) > 0 {
		t.Errorf("processes running inside the image after provisioning: %v", pids)
	}
	// The boot scripts are valid shell.
	for _, p := range []string{"/usr/local/sbin/krgimage-hostname", "/usr/local/sbin/krgimage-ssh-hostkeys"} {
		inChroot(t, img, "sh -n "+p+" && echo ok")
	}
	testenv.AssertNoMounts(t, root)

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
	root := testenv.Root(t, testenv.Bookworm)
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
		{"unknown group", "- users: [{name: a, groups: [wheel]}]", ErrNoSuchGroup, "wheel", false},
		{"uid of an image user", "- users: [{name: newbie, uid: 1}]", ErrClash, "uid 1 already belongs to daemon", false},
		{"user with another uid", "- users: [{name: daemon, uid: 4242}]", ErrClash, "already exists with uid 1", false},
		{"missing files source", "- files: [{src: nope, dst: /etc/nope}]", ErrMissing, "nope", true},
		{"destination through an absolute symlink", "- files: [{src: motd, dst: /etc/evil/canary}]", ErrUnsafePath, "/etc/evil/canary", false},
		{"write through an absolute symlink", "- write: {path: /etc/evil/canary, content: pwned}", ErrUnsafePath, "/etc/evil/canary", false},
		{"no such package", "- packages: [krgimage-no-such-package, also-missing-pkg]", ErrNoSuchPackage, "krgimage-no-such-package, also-missing-pkg", false},
		{"failing script", "- run: {script: 'echo about to fail; exit 3'}", nil, "about to fail", false},
		{"missing password variable", "- root-password: {env: NOT_SET_ANYWHERE}", ErrMissing, "$NOT_SET_ANYWHERE is not set", false},
		{"initramfs-tools absent", "- initramfs-tools", ErrMissing, "install initramfs-tools", false},
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
				var s *Session
				s, err = Open(t.Context(), img)
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
			testenv.AssertNoMounts(t, root)
		})
	}
}
