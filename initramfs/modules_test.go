package initramfs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/testfixture"
	"github.com/krgimage/krgimage/recipes"
)

// closure computes, independently of Resolve, the module files names
// need according to modules.dep.
func closure(t *testing.T, dir string, names []string) map[string]bool {
	t.Helper()
	dep, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, l := range strings.Split(string(dep), "\n") {
		mod, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		base := filepath.Base(mod)
		byName[strings.ReplaceAll(base[:strings.Index(base, ".ko")], "-", "_")] = mod
	}
	out := map[string]bool{}
	var add func(string)
	add = func(m string) {
		if out[m] {
			return
		}
		out[m] = true
		for _, d := range deps[m] {
			add(d)
		}
	}
	for _, n := range names {
		if m, ok := byName[strings.ReplaceAll(n, "-", "_")]; ok {
			add(m)
		}
	}
	return out
}

func TestModulesOfDebianKernel(t *testing.T) {
	kroot, version := testfixture.CachedKernelRoot(t)
	o := Options{Root: kroot, Kernel: version, NICs: recipes.DefaultNICs, DefaultNICs: true, BuildTime: time.Unix(1700000000, 0)}
	a, res, err := Assemble(o)
	if err != nil {
		t.Fatal(err)
	}
	want := closure(t, filepath.Join(kroot, "lib/modules", version), append(append([]string{}, recipes.DefaultNICs...), NFSModules...))
	got := map[string]bool{}
	for _, m := range res.Modules {
		got[m] = true
		if !a.Has(filepath.Join("lib/modules", version, m)) {
			t.Errorf("%s listed but not in the archive", m)
		}
	}
	var missing, extra []string
	for m := range want {
		if !got[m] {
			missing = append(missing, m)
		}
	}
	for m := range got {
		if !want[m] {
			extra = append(extra, m)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("modules: missing %v, unrelated %v", missing, extra)
	}
	for _, m := range []string{"kernel/drivers/net/ethernet/intel/e1000/e1000.ko", "kernel/fs/nfs/nfsv4.ko", "kernel/net/sunrpc/sunrpc.ko", "kernel/drivers/virtio/virtio_pci.ko"} {
		if !got[m] {
			t.Errorf("%s missing", m)
		}
	}
	// Load order: every module after what it needs.
	pos := map[string]int{}
	for i, m := range res.Modules {
		pos[m] = i
	}
	if pos["kernel/net/sunrpc/sunrpc.ko"] > pos["kernel/fs/nfs/nfs.ko"] || pos["kernel/fs/nfs/nfs.ko"] > pos["kernel/fs/nfs/nfsv3.ko"] {
		t.Errorf("load order puts a module before its dependencies: %v", res.Modules)
	}
	if !slices.Contains(res.Absent, "igc") && !slices.Contains(res.Modules, "kernel/drivers/net/ethernet/intel/igc/igc.ko") {
		t.Errorf("igc neither included nor reported absent")
	}

	// A module asked for by name that the kernel lacks is an error.
	o.Modules = []string{"krgimage_no_such_module"}
	if _, _, err := Assemble(o); !errors.Is(err, ErrNoModule) || !strings.Contains(err.Error(), "krgimage_no_such_module") {
		t.Errorf("missing module: %v", err)
	}
	// So is a NIC named in the recipe.
	o.Modules, o.NICs, o.DefaultNICs = nil, []string{"e1000", "no-such-nic"}, false
	if _, _, err := Assemble(o); !errors.Is(err, ErrNoModule) || !strings.Contains(err.Error(), "no-such-nic") {
		t.Errorf("missing NIC: %v", err)
	}
}

// Two builds give the same bytes.
func TestWriteReproducible(t *testing.T) {
	kroot, version := testfixture.CachedKernelRoot(t)
	o := Options{Root: kroot, Kernel: version, NICs: recipes.DefaultNICs, DefaultNICs: true, BuildTime: time.Unix(1700000000, 0), Compression: "xz"}
	a := filepath.Join(t.TempDir(), "a.img")
	b := filepath.Join(t.TempDir(), "b.img")
	if _, err := WriteFile(t.Context(), o, a); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFile(t.Context(), o, b); err != nil {
		t.Fatal(err)
	}
	// Both missing would compare equal: read errors fail the test.
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(da, db) {
		t.Error("two builds of the same initramfs differ")
	}
}

// A dynamically linked binary brings its loader and libraries, found as
// the image's loader would find them (through absolute symlinks inside
// the image, not the host's).
func TestLibraries(t *testing.T) {
	kroot, _ := testfixture.CachedKernelRoot(t)
	libs, err := Libraries(kroot, "/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libselinux.so.1"} {
		if _, ok := libs[want]; !ok {
			t.Errorf("Libraries(/bin/ls) lacks %s: %v", want, libs)
		}
	}
	for name, file := range libs {
		if fi, err := os.Stat(filepath.Join(kroot, file)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s -> %s is not a file in the image", name, file)
		}
	}
	static, err := Libraries(kroot, "/bin/busybox")
	if err != nil || len(static) != 0 {
		t.Errorf("busybox-static needs %v (%v), want nothing", static, err)
	}
}
