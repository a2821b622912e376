package kernel

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// DefaultTargets is Kerrighed 3.0.0's sequence from its INSTALL file, run
// after ./configure --with-kernel=LINUX.
var DefaultTargets = []string{"kernel", "all", "kernel-install", "install"}

// Exec runs one build command: argv in dir, with env added, every output
// line passed to line. The host and the image's chroot each provide one.
type Exec func(ctx context.Context, argv []string, dir string, env []string, line func(string)) error

// BuildOptions configure a source build.
type BuildOptions struct {
	// Dir and Linux are the trees as the commands see them (inside the
	// image for a chroot build).
	Dir   string
	Linux string
	// HostDir is Dir on the build host, to look for ./configure and keep
	// state.
	HostDir   string
	Configure []string
	Targets   []string
	Jobs      int
	Env       map[string]string
	// DestDir is the image root as the commands see it ("/" in a chroot).
	DestDir string
	// Log receives every line the build prints.
	Log io.Writer
}

// env returns the build's environment, sorted. A value may use $(DESTDIR)
// for the image root (INSTALL_MOD_PATH: $(DESTDIR)); make would pass it on
// unexpanded to the scripts it runs.
func (o BuildOptions) env() []string {
	m := map[string]string{"DESTDIR": o.DestDir}
	for k, v := range o.Env {
		m[k] = strings.ReplaceAll(v, "$(DESTDIR)", o.DestDir)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}

// Steps returns the commands Build runs, for the plan.
func (o BuildOptions) Steps() []string {
	var out []string
	if o.hasConfigure() || o.HostDir == "" {
		out = append(out, strings.Join(o.configureArgv(), " ")+" (when the tree has a configure script)")
	}
	for _, t := range o.targets() {
		out = append(out, strings.Join(o.makeArgv(t), " "))
	}
	return out
}

func (o BuildOptions) hasConfigure() bool {
	fi, err := os.Stat(filepath.Join(o.HostDir, "configure"))
	return err == nil && fi.Mode()&0o111 != 0
}

func (o BuildOptions) configureArgv() []string {
	argv := []string{"./configure"}
	if o.Linux != "" {
		argv = append(argv, "--with-kernel="+o.Linux)
	}
	return append(argv, o.Configure...)
}

func (o BuildOptions) targets() []string {
	if len(o.Targets) > 0 {
		return o.Targets
	}
	return DefaultTargets
}

func (o BuildOptions) jobs() int {
	if o.Jobs > 0 {
		return o.Jobs
	}
	return runtime.NumCPU()
}

// makeArgv is one make run. INSTALLKERNEL names no program, so that
// Linux's "make install" copies the kernel itself instead of running the
// build host's installkernel, whose hooks would update the host's own
// initramfs and boot loader; it must be on the command line to beat the
// kernel Makefile's own assignment.
func (o BuildOptions) makeArgv(target string) []string {
	return []string{"make", "-j" + strconv.Itoa(o.jobs()), target, "DESTDIR=" + o.DestDir, "INSTALLKERNEL=krgimage-no-installkernel"}
}

// configured records the configure command last run in a tree, so an
// unchanged one is not run again and make stays incremental.
const configuredMarker = ".krgimage-configured"

// Build runs configure (when the tree has one and its arguments changed)
// and each make target, stopping at the first failure with an error that
// names the target and shows the last lines it printed.
func Build(ctx context.Context, exec Exec, o BuildOptions) error {
	var mu sync.Mutex
	tail := newTail(25)
	line := func(l string) {
		mu.Lock()
		defer mu.Unlock()
		tail.add(l)
		if o.Log != nil {
			io.WriteString(o.Log, l+"\n")
		}
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("%w: %s: %v\nlast lines of the build log:\n  | %s", ErrTarget, what, err, strings.Join(tail.lines(), "\n  | "))
	}
	if o.hasConfigure() {
		argv := o.configureArgv()
		want := strings.Join(argv, "\x00")
		marker := filepath.Join(o.HostDir, configuredMarker)
		if have, err := os.ReadFile(marker); err != nil || !bytes.Equal(have, []byte(want)) {
			if err := exec(ctx, argv, o.Dir, o.env(), line); err != nil {
				return fail(strings.Join(argv, " "), err)
			}
			if err := os.WriteFile(marker, []byte(want), 0o644); err != nil {
				return err
			}
		}
	}
	for _, t := range o.targets() {
		if err := exec(ctx, o.makeArgv(t), o.Dir, o.env(), line); err != nil {
			return fail("make "+t, err)
		}
	}
	return nil
}

// tail keeps the last lines of a build's output for its error message.
type tail struct {
	n   int
	buf []string
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(l string) {
	t.buf = append(t.buf, l)
	if len(t.buf) > t.n {
		t.buf = t.buf[1:]
	}
}

func (t *tail) lines() []string { return t.buf }
