package kernel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/internal/testfixture"
)

// tarball packs a testdata tree into a .tar.gz and returns its path and
// sha256.
func tarball(t *testing.T, dir string) (string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(dir)+".tar.gz")
	if o, err := exec.Command("tar", "-czf", out, "-C", filepath.Dir(dir), filepath.Base(dir)).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, o)
	}
	b, _ := os.ReadFile(out)
	sum := sha256.Sum256(b)
	return out, hex.EncodeToString(sum[:])
}

func fetcher(t *testing.T) *Fetcher {
	log := logging.Discard()
	return &Fetcher{HTTP: http.DefaultClient, Runner: run.New(log), Log: log, Downloads: filepath.Join(t.TempDir(), "downloads")}
}

func hostExec(r *run.Runner) Exec {
	return func(ctx context.Context, argv []string, dir string, env []string, line func(string)) error {
		return r.Run(ctx, run.Cmd{Path: argv[0], Args: argv[1:], Dir: dir, Env: env, Line: line})
	}
}

func TestPrepareAndBuild(t *testing.T) {
	src, sum := tarball(t, "testdata/kerrighed-3.0.0")
	linux, _ := tarball(t, "testdata/linux-2.6.30")
	cache := t.TempDir()
	f := fetcher(t)
	s := Sources{Source: src, SHA256: sum, Linux: linux}
	tree, err := f.Prepare(t.Context(), s, cache, true)
	if err != nil {
		t.Fatal(err)
	}
	if tree.Reused || filepath.Base(tree.Dir) != "kerrighed-3.0.0" || filepath.Base(tree.Linux) != "linux-2.6.30" {
		t.Errorf("tree = %+v", tree)
	}
	dest := t.TempDir()
	var log strings.Builder
	o := BuildOptions{Dir: tree.Dir, HostDir: tree.Dir, Linux: tree.Linux, DestDir: dest, Jobs: 2, Log: &log}
	if err := Build(t.Context(), hostExec(f.Runner), o); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"boot/vmlinuz-2.6.30-krg3.0.0", "lib/modules/2.6.30-krg3.0.0/kerrighed/kerrighed.ko", "usr/bin/krgadm", "etc/default/kerrighed"} {
		if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	if !strings.Contains(log.String(), "checking for the Linux sources... "+tree.Linux) {
		t.Errorf("configure did not get --with-kernel:\n%s", log.String())
	}

	// Same inputs: the tree is reused and configure not run again.
	again, err := f.Prepare(t.Context(), s, cache, true)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || again.Dir != tree.Dir || again.Key != tree.Key {
		t.Errorf("second Prepare = %+v, want the first tree reused", again)
	}
	log.Reset()
	if err := Build(t.Context(), hostExec(f.Runner), o); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "checking for the Linux sources") {
		t.Error("configure ran again with unchanged arguments")
	}
	if strings.Contains(log.String(), "LD      vmlinux") {
		t.Error("make rebuilt the kernel although nothing changed")
	}

	// A config changes the key.
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("CONFIG_KRG=y\n"), 0o644)
	s.Config = cfg
	withCfg, err := f.Prepare(t.Context(), s, cache, true)
	if err != nil {
		t.Fatal(err)
	}
	if withCfg.Key == tree.Key {
		t.Error("the config does not change the key")
	}
	if b, _ := os.ReadFile(filepath.Join(withCfg.Linux, ".config")); string(b) != "CONFIG_KRG=y\n" {
		t.Errorf(".config in the Linux tree = %q", b)
	}
}

func TestBuildFailureNamesTarget(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "Makefile"), []byte("kernel:\n\t@echo compiling\n\t@echo 'arch/x86/kernel/krg.c:12: error: boom' >&2\n\t@false\n"), 0o644)
	r := run.New(logging.Discard())
	err := Build(t.Context(), hostExec(r), BuildOptions{Dir: dir, HostDir: dir, DestDir: t.TempDir(), Targets: []string{"kernel", "install"}})
	if !errors.Is(err, ErrTarget) {
		t.Fatalf("Build() = %v, want ErrTarget", err)
	}
	for _, want := range []string{"make kernel", "error: boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestSourceErrors(t *testing.T) {
	src, sum := tarball(t, "testdata/kerrighed-3.0.0")
	f := fetcher(t)
	wrong := strings.Repeat("0", 64)
	if _, err := f.Prepare(t.Context(), Sources{Source: src, SHA256: wrong}, t.TempDir(), true); !errors.Is(err, ErrChecksum) {
		t.Errorf("wrong sha256: %v", err)
	}
	if _, err := f.Prepare(t.Context(), Sources{Source: "/nonexistent/kerrighed.tar.gz"}, t.TempDir(), true); !errors.Is(err, ErrSource) {
		t.Errorf("missing tarball: %v", err)
	}
	body, _ := os.ReadFile(src)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/kerrighed-3.0.0.tar.gz" {
			w.Write(body)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	tree, err := f.Prepare(t.Context(), Sources{Source: srv.URL + "/kerrighed-3.0.0.tar.gz", SHA256: sum}, t.TempDir(), true)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tree.Dir, "configure")); err != nil {
		t.Error(err)
	}
	if _, err := f.Prepare(t.Context(), Sources{Source: srv.URL + "/kerrighed-3.0.0.tar.gz", SHA256: wrong}, t.TempDir(), true); !errors.Is(err, ErrChecksum) {
		t.Errorf("download with the wrong sha256: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.Downloads, wrong)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a download that failed its check was kept")
	}
	if _, err := f.Prepare(t.Context(), Sources{Source: srv.URL + "/missing.tar.gz", SHA256: wrong}, t.TempDir(), true); !errors.Is(err, ErrSource) {
		t.Errorf("404: %v", err)
	}
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	if _, err := Resolve(root, ""); !errors.Is(err, ErrNoKernel) {
		t.Errorf("empty /boot: %v", err)
	}
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-6.1.0-50-amd64"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "boot/config-6.1.0-50-amd64"), nil, 0o644)
	if v, err := Resolve(root, ""); err != nil || v != "6.1.0-50-amd64" {
		t.Errorf("one kernel: %q %v", v, err)
	}
	os.WriteFile(filepath.Join(root, "boot/vmlinux-2.6.30-krg3.0.0"), nil, 0o644)
	if _, err := Resolve(root, ""); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("two kernels: %v", err)
	}
	if v, err := Resolve(root, "2.6.30-krg3.0.0"); err != nil || v != "2.6.30-krg3.0.0" {
		t.Errorf("asked for: %q %v", v, err)
	}
	if _, err := Resolve(root, "5.10.0-1-amd64"); !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "2.6.30-krg3.0.0, 6.1.0-50-amd64") {
		t.Errorf("absent version: %v", err)
	}
	vs, _ := Versions(root)
	if !slices.Equal(vs, []string{"2.6.30-krg3.0.0", "6.1.0-50-amd64"}) {
		t.Errorf("Versions() = %v", vs)
	}
	if err := Check(root, "6.1.0-50-amd64"); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("Check without modules.dep: %v", err)
	}
}

func TestDepmod(t *testing.T) {
	if _, err := lookDepmod(); err != nil {
		testenv.Missing(t, "no depmod on this host (make deps installs kmod)")
	}
	root := t.TempDir()
	const v = "2.6.30-krg3.0.0"
	dir := filepath.Join(ModulesDir(root, v), "kerrighed")
	os.MkdirAll(dir, 0o755)
	for _, m := range []string{"kerrighed.ko", "krgsyscalls.ko"} {
		b, _ := os.ReadFile("testdata/kerrighed-3.0.0/modules/" + m)
		os.WriteFile(filepath.Join(dir, m), b, 0o644)
	}
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-"+v), []byte("k"), 0o644)
	if err := Depmod(t.Context(), run.New(logging.Discard()), root, v); err != nil {
		t.Fatal(err)
	}
	dep, err := os.ReadFile(filepath.Join(ModulesDir(root, v), "modules.dep"))
	if err != nil || !strings.Contains(string(dep), "kerrighed/kerrighed.ko:") {
		t.Errorf("modules.dep = %q, %v", dep, err)
	}
	if err := Check(root, v); err != nil {
		t.Error(err)
	}
}

// Linux's "make install" must not run the build host's installkernel, and
// env values may name the image root as $(DESTDIR).
func TestBuildProtectsTheHost(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Makefile"), []byte("export INSTALLKERNEL := installkernel\ninstall:\n\t@echo \"installer=$(INSTALLKERNEL) path=$$INSTALL_PATH\"\n"), 0o644)
	dest := t.TempDir()
	var log strings.Builder
	err := Build(t.Context(), hostExec(run.New(logging.Discard())), BuildOptions{Dir: dir, HostDir: dir, DestDir: dest,
		Targets: []string{"install"}, Env: map[string]string{"INSTALL_PATH": "$(DESTDIR)/boot"}, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if want := "installer=krgimage-no-installkernel path=" + dest + "/boot"; !strings.Contains(log.String(), want) {
		t.Errorf("build printed %q, want %q", log.String(), want)
	}
}

// Linux's "make install" on x86 without installkernel writes a plain
// /boot/vmlinuz; its setup header says which version it is.
func TestNameInstalled(t *testing.T) {
	kroot, version := testfixture.CachedKernelRoot(t)
	img, err := os.ReadFile(filepath.Join(kroot, "boot", "vmlinuz-"+version))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	os.WriteFile(filepath.Join(root, "boot/vmlinuz"), img, 0o644)
	os.WriteFile(filepath.Join(root, "boot/System.map"), []byte("map"), 0o644)
	got, err := NameInstalled(root, "")
	if err != nil || got != version {
		t.Fatalf("NameInstalled() = %q, %v; want %q", got, err, version)
	}
	for _, p := range []string{"boot/vmlinuz-" + version, "boot/System.map-" + version} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Error(err)
		}
	}
	if v, _ := ImageVersion(filepath.Join("testdata", "kerrighed-3.0.0", "Makefile")); v != "" {
		t.Errorf("ImageVersion(not a kernel) = %q", v)
	}
}
