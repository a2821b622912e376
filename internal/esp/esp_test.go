package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/internal/testenv"
)

// buildTime is every test image's date: 2023-11-14T22:13:20Z.
var buildTime = time.Unix(1700000000, 0).UTC()

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if p, err = run.LookSbin(name); err != nil {
			testenv.Missing(t, "%s not installed", name)
		}
	}
	return p
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
			if err := Write(img, files, buildTime); err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(img)
			if fi.Size() != Size([]int64{2, mb * mib}) || !fatFits(fi.Size()) {
				t.Errorf("ESP of %d bytes", fi.Size())
			}
			if out, err := exec.Command(fsck, "-n", img).CombinedOutput(); err != nil {
				t.Errorf("fsck.vfat -n: %v\n%s", err, out)
			}
			if err := Check(t.Context(), img); err != nil {
				t.Error(err)
			}
		})
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

// finishFAT reads structures go-diskfs wrote; damaged ones must give
// errors, never a crash or a loop, and the errors say what they are.
func FuzzFinishFAT(f *testing.F) {
	f.Add(tinyFAT())
	f.Fuzz(func(t *testing.T, b []byte) {
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
