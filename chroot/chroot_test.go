package chroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/internal/testfixture"
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
		Root: root, Recipe: r, Mirror: testfixture.Mirror(t), Log: log, Runner: run.New(log),
		LookupEnv: func(k string) (string, bool) {
			v, ok := map[string]string{"ROOT_HASH": "$6$rounds=5000$salt$hashhashhash"}[k]
			return v, ok
		},
		BuildTime: time.Unix(1700000000, 0),
	}
}

func TestSession(t *testing.T) {
	root := testfixture.Root(t, testfixture.Bookworm)
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
	testfixture.AssertNoMounts(t, root) // the mounts exist only in the helper's namespace
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
	root := testfixture.Root(t, testfixture.Bookworm)
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
	root := testfixture.Root(t, testfixture.Bookworm)
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
	root := testfixture.Root(t, testfixture.Bookworm)
	cmd := startBlocker(t, root)
	inside := testfixture.Contained()
	if len(inside) == 0 {
		t.Fatal("no process runs inside the image")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	testfixture.AssertNoMounts(t, root)
	waitFor(t, "chrooted processes to die with krgimage", func() bool { return len(testfixture.AliveIn(inside)) == 0 })
}

func TestInterruptedUnwinds(t *testing.T) {
	root := testfixture.Root(t, testfixture.Bookworm)
	cmd := startBlocker(t, root)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("blocker exited with %v, want status 1 (interrupted)", err)
	}
	testfixture.AssertNoMounts(t, root)
	if len(testfixture.Contained()) != 0 {
		t.Error("processes still run inside the image")
	}
	if _, err := os.Lstat(filepath.Join(root, "usr/sbin/policy-rc.d")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("an interrupted session left policy-rc.d in the image")
	}
}

// inChroot runs a shell script in a session on img and returns its output.
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
