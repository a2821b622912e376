package esp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"github.com/krgimage/krgimage/internal/run"
)

// File is one file of the image: Data, or the file at Src.
type File struct {
	Data []byte
	Src  string
}

func (f File) open() (io.ReadCloser, error) {
	if f.Src != "" {
		return os.Open(f.Src)
	}
	return io.NopCloser(bytes.NewReader(f.Data)), nil
}

func (f File) size() (int64, error) {
	if f.Src == "" {
		return int64(len(f.Data)), nil
	}
	fi, err := os.Stat(f.Src)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// ESP sizes. FAT32 needs 65525 clusters; go-diskfs uses 512-byte clusters
// up to 260 MB, so nothing smaller than about 33 MB is FAT32.
const (
	mib    = 1 << 20
	espMin = 34 * mib
)

// Size is the size of an EFI system partition image that holds files
// of the given sizes: their 512-byte clusters, one cluster per directory
// entry block, the two FATs of 4 bytes a cluster, and slack, in whole
// MiB.
func Size(sizes []int64) int64 {
	var clusters int64
	for _, s := range sizes {
		clusters += (s+511)/512 + 1
	}
	data := clusters*512 + 64*1024
	total := data + 2*4*(data/512) + mib
	total += total / 50
	total = (total + mib - 1) / mib * mib
	total = max(total, espMin)
	for !fatFits(total) {
		total += mib
	}
	return total
}

// fatFits says whether go-diskfs v1.9.4 makes a sound FAT32 of size bytes.
// Its closed form for the FAT's size comes out one sector short at some
// sizes (64 MiB, 129 MiB, every 65 MiB): the FAT then has fewer entries
// than the filesystem has clusters, and fsck.vfat calls it corrupt. This
// is its computation, to step over those sizes.
func fatFits(size int64) bool {
	const reserved = 32
	spc := int64(1)
	if size > 260*mib {
		spc = 8
	}
	total := size / 512
	perFAT := (4*(total-reserved) + 512*spc + 8 - 1) / (512*spc + 8)
	clusters := (total - reserved - 2*perFAT) / spc
	return clusters+2 <= perFAT*512/4
}

// Write writes a FAT32 EFI system partition image holding files (by
// path, with the time t on every entry) to dst, which must not exist.
func Write(dst string, files map[string]File, t time.Time) error {
	var sizes []int64
	paths := make([]string, 0, len(files))
	for p, f := range files {
		n, err := f.size()
		if err != nil {
			return err
		}
		sizes = append(sizes, n)
		paths = append(paths, p)
	}
	sort.Strings(paths)
	size := Size(sizes)
	f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	// reproducible: a zero volume serial number instead of the clock's.
	fsys, err := fat32.Create(file.New(f, false), size, 0, 512, "KRGIMAGE", true)
	if err != nil {
		return fmt.Errorf("creating the FAT32 filesystem: %w", err)
	}
	made := map[string]bool{}
	for _, p := range paths {
		if d := path.Dir(p); d != "." && !made[d] {
			if err := fsys.Mkdir("/" + d); err != nil {
				return fmt.Errorf("making /%s: %w", d, err)
			}
			made[d] = true
		}
		data, err := readAll(files[p])
		if err != nil {
			return err
		}
		w, err := fsys.OpenFile("/"+p, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("creating /%s: %w", p, err)
		}
		// One write: go-diskfs rewrites the FAT on every call.
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("writing /%s: %w", p, err)
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	if err := finishFAT(f, t); err != nil {
		return fmt.Errorf("setting the dates of %s: %w", dst, err)
	}
	return f.Sync()
}

func readAll(f File) ([]byte, error) {
	r, err := f.open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// finishFAT completes a FAT32 filesystem go-diskfs v1.9.4 wrote so that
// fsck.vfat finds nothing to say and the bytes depend on the content only:
//   - every date of every directory entry is t (go-diskfs takes them from
//     the clock, or from SOURCE_DATE_EPOCH in the process's environment,
//     which a library must not set);
//   - the ".." entry of a directory in the root points to cluster 0, as
//     FAT32 wants, not to the root's cluster;
//   - the FSInfo sectors count the free clusters instead of saying
//     "unknown".
func finishFAT(f rw, t time.Time) error {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, 0); err != nil {
		return err
	}
	bps := int64(binary.LittleEndian.Uint16(bs[11:13]))
	spc := int64(bs[13])
	reserved := int64(binary.LittleEndian.Uint16(bs[14:16]))
	fats := int64(bs[16])
	total := int64(binary.LittleEndian.Uint32(bs[32:36]))
	spf := int64(binary.LittleEndian.Uint32(bs[36:40]))
	root := binary.LittleEndian.Uint32(bs[44:48])
	fsinfo := int64(binary.LittleEndian.Uint16(bs[48:50]))
	backup := int64(binary.LittleEndian.Uint16(bs[50:52]))
	if bps < 512 || spc == 0 || fats == 0 || spf == 0 || string(bs[82:87]) != "FAT32" {
		return fmt.Errorf("%w: not a FAT32 boot sector", ErrCorrupt)
	}
	if spf*bps > 64*mib || total-reserved-fats*spf <= 0 {
		return fmt.Errorf("%w: FAT32 of %d sectors with FATs of %d", ErrCorrupt, total, spf)
	}
	if err := within(f, reserved*bps, spf*bps); err != nil {
		return fmt.Errorf("%w: FAT: %v", ErrCorrupt, err)
	}
	fat := make([]byte, spf*bps)
	if _, err := f.ReadAt(fat, reserved*bps); err != nil {
		return err
	}
	clusterBytes := spc * bps
	dataStart := (reserved + fats*spf) * bps
	clusters := uint32((total - reserved - fats*spf) / spc)
	if int64(clusters+2)*4 > int64(len(fat)) {
		return fmt.Errorf("%w: %d clusters, a FAT for %d", ErrCorrupt, clusters, len(fat)/4-2)
	}
	next := func(c uint32) uint32 { return binary.LittleEndian.Uint32(fat[c*4:]) & 0x0fffffff }
	date, tod := fatDate(t)
	seen := map[uint32]bool{}
	var walk func(first uint32, inRoot bool) error
	walk = func(first uint32, inRoot bool) error {
		// A directory has a cluster; FAT32 numbers them in 28 bits.
		first &= 0x0fffffff
		if first < 2 || first >= clusters+2 {
			return fmt.Errorf("%w: directory at cluster %d", ErrCorrupt, first)
		}
		for c := first; c < 0x0ffffff8; c = next(c) {
			if c < 2 || c >= clusters+2 || seen[c] {
				return fmt.Errorf("%w: FAT cluster chain at %d", ErrCorrupt, c)
			}
			seen[c] = true
			at := dataStart + int64(c-2)*clusterBytes
			buf := make([]byte, clusterBytes)
			if _, err := f.ReadAt(buf, at); err != nil {
				return err
			}
			var subdirs []uint32
			for e := 0; e+32 <= len(buf); e += 32 {
				ent := buf[e : e+32]
				if ent[0] == 0 {
					break
				}
				if ent[0] == 0xe5 || ent[11]&0x3f == 0x0f {
					continue
				}
				ent[13] = 0
				copy(ent[14:16], tod)
				copy(ent[16:18], date)
				copy(ent[18:20], date)
				copy(ent[22:24], tod)
				copy(ent[24:26], date)
				dotdot := string(ent[0:11]) == "..         "
				if dotdot && inRoot {
					binary.LittleEndian.PutUint16(ent[20:22], 0)
					binary.LittleEndian.PutUint16(ent[26:28], 0)
				}
				if ent[11]&0x10 != 0 && ent[0] != '.' {
					subdirs = append(subdirs, uint32(binary.LittleEndian.Uint16(ent[20:22]))<<16|uint32(binary.LittleEndian.Uint16(ent[26:28])))
				}
			}
			if _, err := f.WriteAt(buf, at); err != nil {
				return err
			}
			for _, d := range subdirs {
				if err := walk(d, first == root); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root, false); err != nil {
		return err
	}
	free, firstFree := uint32(0), uint32(0xffffffff)
	for c := uint32(2); c < clusters+2; c++ {
		if next(c) == 0 {
			free++
			firstFree = min(firstFree, c)
		}
	}
	for _, sec := range []int64{fsinfo, backup + fsinfo} {
		fi := make([]byte, 512)
		if _, err := f.ReadAt(fi, sec*bps); err != nil {
			return err
		}
		if string(fi[0:4]) != "RRaA" || string(fi[484:488]) != "rrAa" {
			return fmt.Errorf("%w: no FSInfo sector at %d", ErrCorrupt, sec)
		}
		binary.LittleEndian.PutUint32(fi[488:492], free)
		binary.LittleEndian.PutUint32(fi[492:496], firstFree)
		if _, err := f.WriteAt(fi, sec*bps); err != nil {
			return err
		}
	}
	return nil
}

// fatDate is t as FAT's date and time of day (two-second steps, from 1980).
func fatDate(t time.Time) (date, tod []byte) {
	t = t.UTC()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	date, tod = make([]byte, 2), make([]byte, 2)
	binary.LittleEndian.PutUint16(date, uint16((t.Year()-1980)<<9|int(t.Month())<<5|t.Day()))
	binary.LittleEndian.PutUint16(tod, uint16(t.Hour()<<11|t.Minute()<<5|t.Second()/2))
	return date, tod
}

// Errors callers branch on.
var (
	// ErrCorrupt: a FAT image is not the sound FAT32 filesystem it
	// should be, by its own structures or by fsck.vfat.
	ErrCorrupt = errors.New("corrupt FAT image")
	// ErrNoFsck: fsck.vfat (dosfstools) is not installed, so an ESP
	// cannot be checked.
	ErrNoFsck = errors.New("fsck.vfat not found: install dosfstools")
)

// Check runs fsck.vfat -n on a FAT image: go-diskfs has written
// corrupt FAT32 filesystems at some sizes, and firmware says nothing more
// helpful than that it found no boot file.
func Check(ctx context.Context, img string) error {
	bin, err := exec.LookPath("fsck.vfat")
	if err != nil {
		if bin, err = run.LookSbin("fsck.vfat"); err != nil {
			return ErrNoFsck
		}
	}
	out, err := exec.CommandContext(ctx, bin, "-n", img).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: fsck.vfat -n %s: %v: %s", ErrCorrupt, img, err, lastLines(string(out), 8))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type rw interface {
	io.ReaderAt
	io.WriterAt
}

// within checks that n bytes at off are in the image before a buffer for
// them is made: a damaged size must not cost gigabytes.
func within(f io.ReaderAt, off, n int64) error {
	if n <= 0 {
		return nil
	}
	_, err := f.ReadAt(make([]byte, 1), off+n-1)
	return err
}
