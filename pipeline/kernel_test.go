package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/internal/testfixture"
	"github.com/krgimage/krgimage/kernel"
	"github.com/krgimage/krgimage/recipes"
)

// stepEnv is the Env a step gets during a build, for a root of the test's.
func stepEnv(t *testing.T, root string, r *recipes.Recipe) *Env {
	t.Helper()
	log := logging.Discard()
	if testing.Verbose() {
		log, _ = logging.New(os.Stderr, logging.Text, false)
	}
	out := t.TempDir()
	return &Env{
		Recipe: r, Root: root, FinalRoot: root, Out: out, FinalOut: out,
		Mirror: Mirror{URL: testfixture.Mirror(t)}, Arch: r.Architecture, Log: log, Runner: run.New(log),
		Progress: progress.New(nil, false), Task: progress.New(nil, false).Task("t", 0),
		BuildTime: time.Unix(1700000000, 0), LookupEnv: func(string) (string, bool) { return "", false },
		CacheDir: t.TempDir(), State: &State{},
	}
}

func parseRecipe(t *testing.T, src string, vars map[string]string) *recipes.Recipe {
	t.Helper()
	p := filepath.Join(t.TempDir(), "r.yaml")
	os.WriteFile(p, []byte(src), 0o644)
	r, err := recipes.Load(p, recipes.Options{Vars: vars, LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fixtureTarball(t *testing.T, name string) (string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".tar.bz2")
	if o, err := exec.Command("tar", "-cjf", out, "-C", "../kernel/testdata", name).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, o)
	}
	b, _ := os.ReadFile(out)
	s := sha256.Sum256(b)
	return out, hex.EncodeToString(s[:])
}

const krgVersion = "2.6.30-krg3.0.0"

// onHost lists what the Kerrighed fixture would install, checked on the
// host: a build with DESTDIR must put none of it there.
var onHost = []string{"/boot/vmlinuz-" + krgVersion, "/lib/modules/" + krgVersion, "/usr/bin/krgadm", "/etc/default/kerrighed"}

func assertKerrighedInstalled(t *testing.T, env *Env) {
	t.Helper()
	root := env.Root
	for _, p := range []string{"boot/vmlinuz-" + krgVersion, "lib/modules/" + krgVersion + "/kerrighed/kerrighed.ko", "usr/bin/krgadm", "etc/default/kerrighed"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("not in the image: %v", err)
		}
	}
	dep, err := os.ReadFile(filepath.Join(root, "lib/modules", krgVersion, "modules.dep"))
	if err != nil || !strings.Contains(string(dep), "kerrighed/krgsyscalls.ko:") {
		t.Errorf("modules.dep = %q, %v", dep, err)
	}
	if env.State.KernelVersion != krgVersion {
		t.Errorf("recorded version %q", env.State.KernelVersion)
	}
	for _, p := range onHost {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the build wrote %s on the host", p)
		}
	}
	if _, err := os.Stat(filepath.Join(env.Out, "logs", "kernel-build.log")); err != nil {
		t.Errorf("no build log: %v", err)
	}
}

func TestKernelFromSourceOnHost(t *testing.T) {
	root := testfixture.Root(t, testfixture.Bookworm)
	src, sum := fixtureTarball(t, "kerrighed-3.0.0")
	linux, _ := fixtureTarball(t, "linux-2.6.30")
	r := parseRecipe(t, "suite: bookworm\nkernel: {source: \"${SRC}\", sha256: \"${SUM}\", linux: \"${LINUX}\", configure: [--disable-tests]}\n",
		map[string]string{"SRC": src, "SUM": sum, "LINUX": linux})
	env := stepEnv(t, root, r)
	s := &kernelStep{}
	if err := s.Preflight(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	assertKerrighedInstalled(t, env)
	log, _ := os.ReadFile(filepath.Join(env.Out, "logs", "kernel-build.log"))
	if !strings.Contains(string(log), "CONFIGURE_ARGS") && !strings.Contains(string(log), "creating config.mk") {
		t.Errorf("configure did not run:\n%s", log)
	}
}

func TestKernelFromSourceInChroot(t *testing.T) {
	root := testfixture.Root(t, testfixture.Bookworm)
	r := parseRecipe(t, "suite: bookworm\nkernel: {source: \"${SRC}\", linux: \"${LINUX}\", mode: chroot}\n",
		map[string]string{"SRC": mustAbs(t, "../kernel/testdata/kerrighed-3.0.0"), "LINUX": mustAbs(t, "../kernel/testdata/linux-2.6.30")})
	env := stepEnv(t, root, r)
	// The seed's other way builds inside the image, which needs make there.
	sess, err := chroot.Open(t.Context(), &chroot.Image{Root: root, Recipe: r, Mirror: env.Mirror.URL, Log: env.Log, Runner: env.Runner})
	if err != nil {
		t.Fatal(err)
	}
	err = sess.Install(t.Context(), []string{"make"}, false)
	sess.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := (&kernelStep{}).Run(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	assertKerrighedInstalled(t, env)
	// The source directory given is copied into the image, not built in
	// place: the repository's fixture stays clean.
	if _, err := os.Stat("../kernel/testdata/kerrighed-3.0.0/config.mk"); !errors.Is(err, os.ErrNotExist) {
		t.Error("the build wrote into the source directory")
	}
	trees, _ := filepath.Glob(filepath.Join(root, "usr/src/krgimage-kernel/*/src/config.mk"))
	if len(trees) != 1 {
		t.Errorf("build tree inside the image: %v", trees)
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestKernelErrors(t *testing.T) {
	root := testfixture.Root(t, testfixture.Bookworm)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "Makefile"), []byte("kernel:\n\t@echo compiling\nbroken:\n\t@echo 'krg.c:1: error: it broke'; false\ninstall:\n\tinstall -D -m 755 /bin/true $(DESTDIR)/usr/bin/krgtool\n"), 0o644)
	tests := []struct {
		name, kernel string
		want         error
		text         string
	}{
		{"missing tarball", "{source: /nonexistent/kerrighed-3.0.0.tar.gz}", kernel.ErrSource, "no such file"},
		{"failing target", "{source: " + src + ", targets: [kernel, broken]}", kernel.ErrTarget, "make broken"},
		{"nothing in /boot", "{source: " + src + ", targets: [install]}", kernel.ErrNoKernel, "no vmlinuz-*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := stepEnv(t, root, parseRecipe(t, "suite: bookworm\nkernel: "+tt.kernel+"\n", nil))
			err := (&kernelStep{}).Run(t.Context(), env)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Run() = %v, want %v mentioning %q", err, tt.want, tt.text)
			}
		})
	}
	env := stepEnv(t, root, parseRecipe(t, "suite: bookworm\nkernel: {source: /nonexistent/k.tar.gz}\n", nil))
	if err := (&kernelStep{}).Preflight(t.Context(), env); err == nil || !strings.Contains(err.Error(), "r.yaml:2:") {
		t.Errorf("Preflight() = %v, want the recipe line of the missing source", err)
	}
}

// TestKernelPackage installs Debian's kernel into a real bookworm root.
func TestKernelPackage(t *testing.T) {
	root := testfixture.Root(t, testfixture.Bookworm)
	r := parseRecipe(t, "suite: bookworm\nkernel: {package: linux-image-amd64}\ninitramfs: {generator: native}\n", nil)
	env := stepEnv(t, root, r)
	if err := (&kernelStep{}).Run(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	v := env.State.KernelVersion
	if !strings.HasSuffix(v, "-amd64") {
		t.Fatalf("version %q", v)
	}
	if err := kernel.Check(root, v); err != nil {
		t.Error(err)
	}
	mods, _ := filepath.Glob(filepath.Join(root, "lib/modules", v, "kernel/drivers/net/ethernet/intel/e1000/e1000.ko*"))
	if len(mods) != 1 {
		t.Errorf("e1000 module: %v", mods)
	}
	if initrds, _ := filepath.Glob(filepath.Join(root, "boot/initrd.img-*")); len(initrds) != 0 {
		t.Errorf("initramfs-tools ran although krgimage writes the initramfs: %v", initrds)
	}
	// Asking for an absent version is an error naming what is there.
	env2 := stepEnv(t, root, parseRecipe(t, "suite: bookworm\nkernel: {package: linux-image-amd64, version: 9.9.9-krg}\n", nil))
	if err := (&kernelStep{}).Run(t.Context(), env2); !errors.Is(err, kernel.ErrNotInstalled) || !strings.Contains(err.Error(), v) {
		t.Errorf("absent version: %v", err)
	}
}
