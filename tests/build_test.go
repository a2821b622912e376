package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/mounts"
	"github.com/krgimage/krgimage/internal/testfixture"
	"github.com/krgimage/krgimage/pipeline"
)

// TestBuildMinbase builds a real bookworm minbase root with debootstrap
// against the host's mirror and checks it is a usable Debian system.
func TestBuildMinbase(t *testing.T) {
	requireRoot(t)
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.CommandContext(t.Context(), krgimage, "build", "testdata/minbase.yaml", "-o", out, "--log-format", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("krgimage build: %v\n%s", err, tail(stderr.String(), 40))
	}
	if strings.TrimSpace(string(stdout)) != out {
		t.Errorf("stdout = %q, want the output directory", stdout)
	}
	root := filepath.Join(out, "rootfs")
	if b, err := os.ReadFile(filepath.Join(root, "etc/debian_version")); err != nil || !strings.HasPrefix(string(b), "12.") {
		t.Errorf("/etc/debian_version = %q, %v", b, err)
	}
	if o, err := exec.Command("chroot", root, "/bin/true").CombinedOutput(); err != nil {
		t.Errorf("chroot %s /bin/true: %v %s", root, err, o)
	}
	var rep pipeline.Report
	b, err := os.ReadFile(filepath.Join(out, "build.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Result != "success" || len(rep.Steps) != 1 || rep.Steps[0].Name != "bootstrap" || !strings.HasPrefix(rep.Mirror.Source, "host APT configuration") {
		t.Errorf("build.json = %s", b)
	}
	// Every line of --log-format json is a JSON object.
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue // the summary table follows the log
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
	testfixture.AssertNoMounts(t, filepath.Dir(out))
}

// startUntil starts krgimage with args and returns once its log shows
// marker, with a function that waits for it to exit.
func startUntil(t *testing.T, marker string, args ...string) (*exec.Cmd, func() error, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(krgimage, args...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var log strings.Builder
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), marker) {
				signalled = true
				close(seen)
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(5 * time.Minute):
		t.Fatalf("never saw %q:\n%s", marker, log.String())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	wait := func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(2 * time.Minute):
			t.Fatal("krgimage did not stop within 2 minutes")
			return nil
		}
	}
	return cmd, wait, &log
}

// TestBuildInterrupted sends SIGINT once debootstrap is installing (its
// /proc and /sys are mounted in the target then) and checks that krgimage
// stops, fails, and leaves no mount and no finished-looking output behind.
func TestBuildInterrupted(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	cmd, wait, _ := startUntil(t, "Installing core packages", "build", "testdata/minbase.yaml", "-o", filepath.Join(dir, "out"))
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("krgimage exited with %v after SIGINT, want a failure", err)
	}
	if exit.ExitCode() != 130 {
		t.Errorf("exit status %d, want 130", exit.ExitCode())
	}
	testfixture.AssertNoMounts(t, dir)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left behind after an interrupted build: %s", e.Name())
		}
	}
}

// TestBuildKilled kills krgimage outright: no handler runs, yet neither the
// mounts debootstrap made nor any process it started may outlive it, since
// they live in namespaces that die with krgimage; an orphaned dpkg would
// go on writing into the staging directory the next build clears.
func TestBuildKilled(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cmd, wait, log := startUntil(t, "Configuring required packages", "build", "testdata/minbase.yaml", "-o", out, "-v")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait()
	// debootstrap and the dpkg it runs die with krgimage (the namespace's
	// PID 1 has a parent-death signal); give the kernel a moment to tear
	// the namespaces down.
	deadline := time.Now().Add(10 * time.Second)
	for {
		under, err := mounts.Under(dir)
		if err != nil {
			t.Fatal(err)
		}
		procs := testfixture.Under(dir)
		if len(under) == 0 && len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left on the host after SIGKILL: mounts %v, processes %v\n%s", under, procs, tail(log.String(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Error("a killed build left a finished-looking output")
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestBuildBookwormRecipe builds the shipped bookworm recipe and checks
// that every provisioning step visibly took effect in the image.
func TestBuildBookwormRecipe(t *testing.T) {
	out, _ := bookwormImage(t, "ro")
	root := filepath.Join(out, "rootfs")
	chroot := func(root, script string) string {
		t.Helper()
		o, err := exec.Command("chroot", root, "sh", "-c", script).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", script, err, o)
		}
		return strings.TrimSpace(string(o))
	}
	// The read-write image has root's password from the recipe's hash,
	// which its build log does not show.
	rw, rwLog := bookwormImage(t, "rw")
	if strings.Contains(rwLog, testPasswordHash) {
		t.Error("the password hash appears in the build log")
	}
	if got := chroot(filepath.Join(rw, "rootfs"), "getent shadow root | cut -d: -f2"); got != testPasswordHash {
		t.Errorf("root's hash in the read-write image: %q", got)
	}
	checks := map[string]string{
		"getent shadow root | cut -d: -f2":        "!",
		"getent passwd alice | cut -d: -f1,3,6,7": "alice:1000:/home/alice:/bin/bash",
		"id -nG alice":            "alice users",
		"readlink /etc/mtab":      "/proc/mounts",
		"getent hosts node3":      "192.168.1.103   node3.mycluster.home node3",
		"wc -c < /etc/hostname":   "0",
		"wc -c < /etc/machine-id": "0",
		"awk '$3 == \"nfs\"' /etc/fstab | wc -l; grep -c configfs /etc/fstab || true": "3\n0",
		"dpkg-query -W -f '${Status}\\n' systemd-sysv openssh-server nfs-common":      "install ok installed\ninstall ok installed\ninstall ok installed",
		"ls /etc/ssh | grep -c '^ssh_host_' || true":                                  "0",
		"systemctl is-enabled krgimage-hostname krgimage-ssh-hostkeys 2>&1":           "enabled\nenabled",
		"grep -c security /etc/apt/sources.list":                                      "1",
		"tail -n1 /root/.bashrc":                                                      "export LC_ALL=C",
		"test -e /usr/sbin/policy-rc.d || echo absent":                                "absent",
	}
	for script, want := range checks {
		if got := chroot(root, script); got != want {
			t.Errorf("%s:\n got %q\nwant %q", script, got, want)
		}
	}
	var rep pipeline.Report
	b, _ := os.ReadFile(filepath.Join(out, "build.json"))
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rep.Steps {
		names = append(names, s.Name)
	}
	if want := "bootstrap apt-sources packages kernel root-password users locale hosts mtab fstab rcs nfsbooted ssh initramfs netboot snapshot"; strings.Join(names, " ") != want {
		t.Errorf("steps = %s\nwant %s", strings.Join(names, " "), want)
	}
	if v := rep.Recipe.Variables; v["NFSROOT_MODE"] != "ro" || v["NODE_USER"] != "alice" || v["ROOT_PASSWORD_HASH"] != "" {
		t.Errorf("build.json recipe variables = %v; want the build's, without the password hash", v)
	}
	if rep.Snapshot == nil {
		t.Fatal("build.json names no snapshot")
	}
	if o, err := exec.Command(krgimage, "verify", filepath.Join(out, "bookworm-nfsroot.tar.zst"), "--against", root).CombinedOutput(); err != nil {
		t.Errorf("krgimage verify --against the root: %v\n%s", err, tail(string(o), 20))
	}
	for _, p := range []string{"netboot/etc/dhcp/dhcpd.conf", "netboot/srv/tftp/pxelinux.0", "netboot/srv/tftp/pxelinux.cfg/default"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Error(err)
		}
	}
	kernels, _ := filepath.Glob(filepath.Join(out, "netboot/srv/tftp/boot/vmlinuz-*"))
	initrds, _ := filepath.Glob(filepath.Join(out, "netboot/srv/tftp/boot/initrd.img-*"))
	if len(kernels) != 1 || len(initrds) != 1 {
		t.Errorf("TFTP tree boot files: %v %v", kernels, initrds)
	}
	testfixture.AssertNoMounts(t, filepath.Dir(out))
}
