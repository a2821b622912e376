package media

import (
	"bytes"
	"encoding/binary"
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

// Every ESP size krgimage picks is one go-diskfs makes a sound FAT32 of,
// stepping over the sizes it gets wrong, and fsck.vfat agrees.
func TestESP(t *testing.T) {
	for _, tt := range []struct {
		mib  int64
		fits bool
	}{{34, true}, {63, true}, {64, false}, {65, true}, {129, false}, {194, false}, {200, true}} {
		if got := fatFits(tt.mib * mib); got != tt.fits {
			t.Errorf("fatFits(%d MiB) = %v, want %v", tt.mib, got, tt.fits)
		}
	}
	fsck := needTool(t, "fsck.vfat")
	for _, mb := range []int64{1, 29, 61, 62, 126} {
		t.Run(fmt.Sprintf("%dMiB", mb), func(t *testing.T) {
			dir := t.TempDir()
			big := filepath.Join(dir, "big")
			if err := os.WriteFile(big, bytes.Repeat([]byte{0xa5}, int(mb*mib)), 0o644); err != nil {
				t.Fatal(err)
			}
			files := map[string]File{"EFI/BOOT/BOOTX64.EFI": {Data: []byte("MZ")}, "boot/big": {Src: big}}
			img := filepath.Join(dir, "esp.img")
			if err := WriteESP(img, files, buildTime); err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(img)
			if fi.Size() != ESPSize([]int64{2, mb * mib}) || !fatFits(fi.Size()) {
				t.Errorf("ESP of %d bytes", fi.Size())
			}
			if out, err := exec.Command(fsck, "-n", img).CombinedOutput(); err != nil {
				t.Errorf("fsck.vfat -n: %v\n%s", err, out)
			}
			if err := CheckFAT(t.Context(), img); err != nil {
				t.Error(err)
			}
		})
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

// tinyFAT is a FAT32 filesystem of 64 sectors with the faults go-diskfs
// leaves: a subdirectory of the root whose ".." names the root's cluster,
// an unknown free count, dates from the clock.
func tinyFAT() []byte {
	const sec = 512
	img := make([]byte, 64*sec)
	bs := img[:sec]
	binary.LittleEndian.PutUint16(bs[11:], sec)
	bs[13] = 1                                 // sectors a cluster
	binary.LittleEndian.PutUint16(bs[14:], 32) // reserved
	bs[16] = 2                                 // FATs
	binary.LittleEndian.PutUint32(bs[32:], 64) // sectors
	binary.LittleEndian.PutUint32(bs[36:], 1)  // sectors a FAT
	binary.LittleEndian.PutUint32(bs[44:], 2)  // root cluster
	binary.LittleEndian.PutUint16(bs[48:], 1)  // FSInfo
	binary.LittleEndian.PutUint16(bs[50:], 6)  // backup boot sector
	copy(bs[82:], "FAT32   ")
	bs[510], bs[511] = 0x55, 0xaa
	for _, s := range []int{1, 7} {
		fi := img[s*sec : (s+1)*sec]
		copy(fi, "RRaA")
		copy(fi[484:], "rrAa")
		binary.LittleEndian.PutUint32(fi[488:], 0xffffffff)
	}
	fat := img[32*sec:]
	for c, v := range []uint32{0x0ffffff8, 0x0fffffff, 0x0fffffff, 0x0fffffff} {
		binary.LittleEndian.PutUint32(fat[c*4:], v)
	}
	entry := func(at int, name string, attr byte, cluster uint16) {
		e := img[at : at+32]
		copy(e, name)
		e[11] = attr
		for i := 13; i < 20; i++ {
			e[i] = 0x77 // the clock's dates
		}
		e[22], e[23], e[24], e[25] = 0x77, 0x77, 0x77, 0x77
		binary.LittleEndian.PutUint16(e[26:], cluster)
	}
	data := (32 + 2) * sec
	entry(data, "KRGIMAGE   ", 0x08, 0)
	entry(data+32, "EFI        ", 0x10, 3)
	entry(data+sec, ".          ", 0x10, 3)
	entry(data+sec+32, "..         ", 0x10, 2)
	return img
}

func TestFinishFAT(t *testing.T) {
	img := mem(tinyFAT())
	if err := finishFAT(img, buildTime); err != nil {
		t.Fatal(err)
	}
	date, tod := fatDate(buildTime)
	data := (32 + 2) * 512
	for _, at := range []int{data, data + 32, data + 512, data + 512 + 32} {
		e := img[at : at+32]
		if !bytes.Equal(e[14:16], tod) || !bytes.Equal(e[16:18], date) || !bytes.Equal(e[24:26], date) {
			t.Errorf("entry %q keeps the clock's dates", e[:11])
		}
	}
	if c := binary.LittleEndian.Uint16(img[data+512+32+26:]); c != 0 {
		t.Errorf(`".." of a directory in the root names cluster %d, want 0`, c)
	}
	// 64 sectors: 32 reserved, 2 FATs of 1, 30 clusters of which 2 used.
	for _, s := range []int{1, 7} {
		if free := binary.LittleEndian.Uint32(img[s*512+488:]); free != 28 {
			t.Errorf("FSInfo at %d counts %d free clusters, want 28", s, free)
		}
	}
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
	f.Add(tinyFAT())
	f.Fuzz(func(t *testing.T, b []byte) {
		// The ISO passes read only what they have checked is there: any
		// failure says the image is corrupt.
		if err := stampISO(mem(bytes.Clone(b)), buildTime); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("stampISO: %v, want ErrCorrupt", err)
		}
		if err := fixJoliet(mem(bytes.Clone(b))); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("fixJoliet: %v, want ErrCorrupt", err)
		}
		// finishFAT trusts the boot sector's geometry and so may read past
		// a short image, but it stamps dates and counts, never the boot
		// sector's fields (FSInfo's counts sit at 488 when it shares
		// sector 0).
		fat := mem(bytes.Clone(b))
		if err := finishFAT(fat, buildTime); err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, errOutside) {
			t.Errorf("finishFAT: %v, want ErrCorrupt or a read past the end", err)
		}
		if n := min(len(b), 488); !bytes.Equal(fat[:n], b[:n]) {
			t.Errorf("finishFAT changed the boot sector: % x, was % x", fat[:n], b[:n])
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
