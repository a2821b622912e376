package media

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/golden"

	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
)

// buildTime is every test medium's date: 2023-11-14T22:13:20Z.
var buildTime = time.Unix(1700000000, 0).UTC()

const version = "6.1.0-50-amd64"

func load(t *testing.T, path string) *recipes.Recipe {
	t.Helper()
	r, err := recipes.Load(path, recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fakeRoots makes an image with kernels and initramfs (lenny.yaml's node
// kernel too), and a host with stand-ins for syslinux 6's isolinux (its
// hybrid signature included), isohdpfx.bin, Debian's CD GRUB and iPXE, so
// that the bytes do not follow Debian's package versions.
func fakeRoots(t *testing.T) (image, host string) {
	t.Helper()
	image, host = t.TempDir(), t.TempDir()
	bin := make([]byte, 4096)
	copy(bin[0x40:], hybridSignature)
	files := map[string][]byte{
		image + "/boot/vmlinuz-" + version:                         []byte("kernel " + version),
		image + "/boot/initrd.img-" + version:                      []byte("initramfs " + version),
		image + "/boot/vmlinuz-2.6.20-krg":                         []byte("kernel 2.6.20-krg"),
		image + "/boot/initrd.img-2.6.20-krg":                      []byte("initramfs 2.6.20-krg"),
		host + "/usr/lib/ISOLINUX/isolinux.bin":                    bin,
		host + "/usr/lib/ISOLINUX/isohdpfx.bin":                    bytes.Repeat([]byte("MBR code "), 48),
		host + "/usr/lib/syslinux/modules/bios/ldlinux.c32":        []byte("ldlinux.c32"),
		host + "/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed": []byte("MZ GRUB for CDs"),
		host + "/usr/lib/ipxe/ipxe.lkrn":                           []byte("iPXE as a Linux kernel"),
	}
	for p, data := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return image, host
}

var goldenRecipes = []string{"isolinux", "ipxe", "lenny"}

// options are a test medium's: the fake roots, the test kernel, the test
// build time.
func options(r *recipes.Recipe, image, host string) Options {
	return Options{Options: netboot.Options{Recipe: r, ImageRoot: image, HostRoot: host, Kernel: version}, Time: buildTime}
}

func plan(t *testing.T, name string) (*Medium, Options) {
	t.Helper()
	image, host := fakeRoots(t)
	o := options(load(t, "testdata/"+name+".yaml"), image, host)
	m, err := Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	return m, o
}

// Every text file a medium carries, for each recipe, and the list of all
// its files, against their golden copies.
func TestGolden(t *testing.T) {
	for _, name := range goldenRecipes {
		t.Run(name, func(t *testing.T) {
			m, _ := plan(t, name)
			var listing strings.Builder
			for _, p := range m.ISO.Paths() {
				f := m.ISO.Files[p]
				if f.Src != "" {
					fmt.Fprintf(&listing, "%s %v from %s\n", p, f.Mode, filepath.Base(f.Src))
					continue
				}
				fmt.Fprintf(&listing, "%s %v\n", p, f.Mode)
				golden.Check(t, filepath.Join("testdata", "golden", name, p), f.Data)
			}
			for _, p := range slices.Sorted(maps.Keys(m.ESP)) {
				f := m.ESP[p]
				if f.Src != "" {
					fmt.Fprintf(&listing, "%s: %s from %s\n", espImage, p, filepath.Base(f.Src))
					continue
				}
				fmt.Fprintf(&listing, "%s: %s\n", espImage, p)
				golden.Check(t, filepath.Join("testdata", "golden", name, "ESP", p), f.Data)
			}
			golden.Check(t, filepath.Join("testdata", "golden", name, "FILES"), []byte(listing.String()))
		})
	}
}

// The isolinux append line is the PXE one: the same arguments after the
// initrd, for the recipe's label and for each node's own.
func TestAppendLineIsThePXEOne(t *testing.T) {
	m, o := plan(t, "isolinux")
	cfg := string(m.ISO.Files["isolinux/isolinux.cfg"].Data)
	grub := string(m.ISO.Files["boot/grub/grub.cfg"].Data)
	r := o.Recipe
	for _, n := range append([]recipes.ResolvedNode{{}}, r.Nodes()...) {
		e := Entries(r, "/boot/vmlinuz-"+version, "/boot/initrd.img-"+version)
		args := strings.Join(e[0].Args, " ")
		label := r.Netboot.PXE.Label
		if len(n.Append) > 0 {
			args += " " + strings.Join(n.Append, " ")
			label = n.Name
		}
		if want := fmt.Sprintf("LABEL %s\n    kernel /boot/vmlinuz-%s\n    append initrd=/boot/initrd.img-%s %s\n", label, version, version, args); !strings.Contains(cfg, want) {
			t.Errorf("isolinux.cfg lacks\n%s", want)
		}
		if want := fmt.Sprintf("\tlinux /boot/vmlinuz-%s %s\n", version, args); !strings.Contains(grub, want) {
			t.Errorf("grub.cfg lacks\n%s", want)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		recipe string
		break_ func(image, host string)
		want   error
	}{
		{"no isolinux", "isolinux", func(_, host string) { os.Remove(host + "/usr/lib/ISOLINUX/isolinux.bin") }, ErrNoLoader},
		{"syslinux 6 without ldlinux.c32", "isolinux", func(_, host string) { os.Remove(host + "/usr/lib/syslinux/modules/bios/ldlinux.c32") }, ErrNoLoader},
		{"no GRUB for UEFI", "isolinux", func(_, host string) { os.RemoveAll(host + "/usr/lib/grub") }, ErrNoLoader},
		{"no iPXE", "ipxe", func(_, host string) { os.RemoveAll(host + "/usr/lib/ipxe") }, ErrNoLoader},
		{"no initramfs", "isolinux", func(image, _ string) { os.Remove(image + "/boot/initrd.img-" + version) }, netboot.ErrNoKernel},
		{"no node kernel", "lenny", func(image, _ string) { os.Remove(image + "/boot/vmlinuz-2.6.20-krg") }, netboot.ErrNoKernel},
	} {
		t.Run(tt.name, func(t *testing.T) {
			image, host := fakeRoots(t)
			tt.break_(image, host)
			_, err := Plan(options(load(t, "testdata/"+tt.recipe+".yaml"), image, host))
			if !errors.Is(err, tt.want) {
				t.Errorf("Plan() = %v, want %v", err, tt.want)
			}
		})
	}
}

// Lenny's syslinux 3.71 keeps isolinux.bin in /usr/lib/syslinux and has
// no ldlinux.c32 nor, here, isohdpfx.bin: a CD-only medium, said so.
func TestSyslinux3(t *testing.T) {
	image, host := fakeRoots(t)
	os.RemoveAll(host + "/usr/lib")
	os.MkdirAll(host+"/usr/lib/syslinux", 0o755)
	os.WriteFile(host+"/usr/lib/syslinux/isolinux.bin", append([]byte("ISOLINUX 3.71"), make([]byte, 2035)...), 0o644)
	m, err := Plan(options(load(t, "testdata/lenny.yaml"), image, host))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.ISO.Files["isolinux/ldlinux.c32"]; ok || m.ISO.HybridMBR != nil {
		t.Errorf("syslinux 3 medium has ldlinux.c32 or a hybrid MBR")
	}
	if len(m.Notes) != 1 || !strings.Contains(m.Notes[0], "CD only") {
		t.Errorf("notes = %q, want one saying the medium boots from CD only", m.Notes)
	}
	// With an isohdpfx.bin but an isolinux.bin that cannot take it.
	os.WriteFile(host+"/usr/lib/syslinux/isohdpfx.bin", make([]byte, mbrCodeSize), 0o644)
	if m, err = Plan(options(load(t, "testdata/lenny.yaml"), image, host)); err != nil {
		t.Fatal(err)
	}
	if m.ISO.HybridMBR != nil || len(m.Notes) != 1 || !strings.Contains(m.Notes[0], "no entry point for a hybrid MBR") {
		t.Errorf("hybrid MBR for an isolinux.bin without its entry point; notes %q", m.Notes)
	}
	if _, err := m.ISO.WriteFile(filepath.Join(t.TempDir(), "cd.iso")); err != nil {
		t.Error(err)
	}
}

// Recipes that ask for media nodes cannot boot are refused at load.
func TestRecipeValidation(t *testing.T) {
	base := "suite: bookworm\ncluster: {server: {ip: 10.0.0.1}, subnet: 10.0.0.0/24}\nnfsroot: {path: /srv/root}\n"
	for _, tt := range []struct {
		name, yaml, where string
	}{
		{"ipxe with uefi", base + "netboot: {media: {kind: ipxe, uefi: true}}\n", "netboot.media.uefi"},
		{"not x86", base + "architecture: arm64\nnetboot: {media: {}}\n", "netboot.media"},
		{"uefi on i386", base + "architecture: i386\nnetboot: {media: {uefi: true}}\n", "netboot.media.uefi"},
		{"output with a directory", base + "netboot: {media: {output: ../node.iso}}\n", "netboot.media.output"},
		{"unknown kind", base + "netboot: {media: {kind: grub}}\n", "netboot.media.kind"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := recipes.Parse([]byte(tt.yaml), "test.yaml", recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
			if !errors.Is(err, recipes.ErrInvalid) || !strings.Contains(err.Error(), tt.where) {
				t.Errorf("Parse() = %v, want an ErrInvalid at %s", err, tt.where)
			}
		})
	}
}

func writeMedium(t *testing.T, name, dir string) (string, *Result) {
	t.Helper()
	image, host := fakeRoots(t)
	dst := filepath.Join(dir, name+".iso")
	_, res, err := Write(t.Context(), options(load(t, "testdata/"+name+".yaml"), image, host), dst)
	if err != nil {
		t.Fatal(err)
	}
	return dst, res
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if p, err = run.LookSbin(name); err != nil {
			testenv.Missing(t, "%s not installed (make deps installs it)", name)
		}
	}
	return p
}

// volatile are xorriso's lines about the host, not the image.
var volatile = regexp.MustCompile(`(?m)^(xorriso|Drive current|Media current|Media status|Media summary|Drive type).*\n`)

// xorriso, which knows El Torito and isohybrid well, reads the boot
// catalog, the MBR, and every file's name, mode, size and date in each of
// the three trees (Rock Ridge, Joliet, plain ISO 9660) as the golden
// report says.
func TestXorrisoReport(t *testing.T) {
	xorriso := needTool(t, "xorriso")
	for _, name := range goldenRecipes {
		t.Run(name, func(t *testing.T) {
			iso, res := writeMedium(t, name, t.TempDir())
			var report []byte
			for _, tree := range []string{"any", "norock", "ecma119"} {
				cmd := exec.Command(xorriso, "-read_fs", tree, "-indev", iso, "-report_el_torito", "plain", "-report_system_area", "plain",
					"-find", "/", "-exec", "lsdl", "--")
				if tree != "any" {
					cmd = exec.Command(xorriso, "-read_fs", tree, "-indev", iso, "-find", "/", "-exec", "lsdl", "--")
				}
				cmd.Env = append(os.Environ(), "TZ=UTC")
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("xorriso: %v\n%s", err, out)
				}
				report = append(report, "== xorriso -read_fs "+tree+"\n"...)
				report = append(report, volatile.ReplaceAll(out, nil)...)
			}
			golden.Check(t, filepath.Join("testdata", "golden", name+".xorriso"), report)
			if res.Bytes%cylinder != 0 || !res.Hybrid {
				t.Errorf("hybrid image of %d bytes (hybrid %v): want whole 1 MiB cylinders", res.Bytes, res.Hybrid)
			}
		})
	}
}

// The same inputs give the same bytes, whatever the clock, the umask or
// the directory says; another build time gives other bytes.
func TestReproducible(t *testing.T) {
	a, ra := writeMedium(t, "isolinux", t.TempDir())
	// The kernel keeps change times that cannot be set: a second later,
	// every one differs.
	time.Sleep(1100 * time.Millisecond)
	old := syscall.Umask(0o077)
	b, rb := writeMedium(t, "isolinux", t.TempDir())
	syscall.Umask(old)
	if ra.SHA256 != rb.SHA256 {
		t.Fatalf("two builds differ: %s and %s", a, b)
	}
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatal("two builds differ")
	}
	image, host := fakeRoots(t)
	o := options(load(t, "testdata/isolinux.yaml"), image, host)
	o.Time = buildTime.Add(time.Hour)
	_, rc, err := Write(t.Context(), o, filepath.Join(t.TempDir(), "c.iso"))
	if err != nil {
		t.Fatal(err)
	}
	if rc.SHA256 == ra.SHA256 {
		t.Error("another build time gave the same bytes")
	}
	// Every volume date is the build time, and the volume never expires.
	for _, off := range []int{vdCreated, vdModified, vdEffective} {
		if got := string(x[vdStart*sectorSize+off : vdStart*sectorSize+off+16]); got != "2023111422132000" {
			t.Errorf("volume date at %d = %q", off, got)
		}
	}
	if got := string(x[vdStart*sectorSize+vdExpires : vdStart*sectorSize+vdExpires+16]); got != "0000000000000000" {
		t.Errorf("expiration date = %q, want none", got)
	}
	// Stamping is idempotent: nothing was left unstamped.
	f, err := os.OpenFile(a, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := stampISO(f, buildTime); err != nil {
		t.Fatal(err)
	}
	z, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, z) {
		t.Error("stamping a stamped image changed it")
	}
}

func TestCHS(t *testing.T) {
	for _, tt := range []struct {
		lba  uint32
		want [3]byte
	}{
		{0, [3]byte{0, 1, 0}},
		{2047, [3]byte{63, 32, 0}},
		{2048 * 300, [3]byte{0, 1 | 1<<6, 300 & 0xff}},
		{2048*1100 - 1, [3]byte{63, 32 | 3<<6, 0xff}},
	} {
		if got := chs(tt.lba); got != tt.want {
			t.Errorf("chs(%d) = %v, want %v", tt.lba, got, tt.want)
		}
	}
}

func TestVolumeID(t *testing.T) {
	for in, want := range map[string]string{"bookworm-nfsroot": "BOOKWORM_NFSROOT", "": "KRGIMAGE",
		"a-very-long-recipe-name-for-a-big-cluster": "A_VERY_LONG_RECIPE_NAME_FOR_A_BI"} {
		if got := volumeID(in); got != want {
			t.Errorf("volumeID(%q) = %q, want %q", in, got, want)
		}
	}
}

// mem is an image in memory for the fuzzer.
type mem []byte

// errOutside is mem's one error: a read or write past the image's end.
var errOutside = errors.New("outside the image")

func (m mem) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m)) {
		return 0, errOutside
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, errOutside
	}
	return n, nil
}

func (m mem) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, errOutside
	}
	return copy(m[off:], p), nil
}

// The image walkers read structures go-diskfs wrote; damaged ones must
// give errors, never a crash or a loop, and the errors say what they are.
func FuzzStamp(f *testing.F) {
	dir := f.TempDir()
	iso := &ISO{Files: map[string]File{"a/b/c.txt": {Data: []byte("c")}, "d.txt": {Data: []byte("d")}}, VolumeID: "FUZZ", Time: buildTime}
	if _, err := iso.WriteFile(filepath.Join(dir, "seed.iso")); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(dir, "seed.iso"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		// The ISO passes read only what they have checked is there: any
		// failure says the image is corrupt.
		if err := stampISO(mem(bytes.Clone(b)), buildTime); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("stampISO: %v, want ErrCorrupt", err)
		}
		if err := fixJoliet(mem(bytes.Clone(b))); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("fixJoliet: %v, want ErrCorrupt", err)
		}
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}
