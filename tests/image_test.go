package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// testPassword is root's password in the read-write image, which the
// tests log in to with the recipe's boot_test.login; testPasswordHash is
// its yescrypt hash, as a recipe takes it. The read-only image is built
// as make image builds it, root locked: its boot tests log in with the
// boot test's one-time password.
const (
	testPassword     = "krgimage-test"
	testPasswordHash = "$y$j9T$krgimagetestsalt$TSomTYUPHOYBuH1Q1OVyPf2H2URIxJdLc2kzEfFcuRB"
)

// imageVars are the recipe variables of the shared image of mode.
func imageVars(mode string) []string {
	return []string{"--set", "NODE_USER=alice", "--set", "NFSROOT_MODE=" + mode}
}

// imageEnv is the environment of the shared image's build: the password
// hash goes there, not on a command line others can read in /proc.
func imageEnv(mode string) []string {
	if mode == "rw" {
		return append(os.Environ(), "ROOT_PASSWORD_HASH="+testPasswordHash)
	}
	return nil
}

// images are the shipped bookworm recipe's builds, one per NFS root mode,
// made once per test run and shared by the tests that check or boot them.
var images = struct {
	sync.Mutex
	dir  string
	outs map[string]string
	logs map[string]string
	errs map[string]error
}{outs: map[string]string{}, logs: map[string]string{}, errs: map[string]error{}}

// bookwormImage returns the output directory of the bookworm recipe built
// with NFSROOT_MODE=mode, building it the first time it is asked for.
// The log is the build's stderr.
func bookwormImage(t *testing.T, mode string) (out, log string) {
	t.Helper()
	requireRoot(t)
	images.Lock()
	defer images.Unlock()
	if err, ok := images.errs[mode]; ok {
		if err != nil {
			t.Fatalf("the shared %s build failed earlier: %v\n%s", mode, err, tail(images.logs[mode], 40))
		}
		return images.outs[mode], images.logs[mode]
	}
	if images.dir == "" {
		d, err := os.MkdirTemp("", "krgimage-images-")
		if err != nil {
			t.Fatal(err)
		}
		images.dir = d
	}
	out = filepath.Join(images.dir, mode)
	// The builds share a stage cache of their own: the first is made
	// from scratch, the others start from the bootstrapped root it kept.
	cmd := exec.Command(krgimage, append([]string{"build", "../recipes/bookworm-nfsroot.yaml", "-o", out,
		"--cache-dir", filepath.Join(images.dir, "cache"), "--no-cache=false"}, imageVars(mode)...)...)
	cmd.Env = imageEnv(mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	images.outs[mode], images.logs[mode], images.errs[mode] = out, stderr.String(), err
	if err != nil {
		t.Fatalf("krgimage build (NFSROOT_MODE=%s): %v\n%s", mode, err, tail(stderr.String(), 40))
	}
	return out, stderr.String()
}

func removeImages() {
	if images.dir != "" {
		os.RemoveAll(images.dir)
	}
}
