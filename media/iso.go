package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/krgimage/krgimage/internal/fsutil"
)

// File is one file of an image: Data, or the file at Src.
type File struct {
	Data []byte
	Src  string
	Mode fs.FileMode
}

func (f File) open() (io.ReadCloser, error) {
	if f.Src != "" {
		return os.Open(f.Src)
	}
	return io.NopCloser(bytes.NewReader(f.Data)), nil
}

// ISO describes an ISO 9660 image with Rock Ridge and Joliet.
type ISO struct {
	// Files by slash-separated path relative to the image's root.
	// Directories are made as needed, mode 0755.
	Files map[string]File
	// VolumeID is the volume label.
	VolumeID string
	// BIOSBoot is the path of isolinux.bin, booted by El Torito without
	// emulation; BootCatalog the catalog's path.
	BIOSBoot    string
	BootCatalog string
	// EFIBoot is the path of an EFI system partition image, the second El
	// Torito entry.
	EFIBoot string
	// HybridMBR is the boot code isohybrid puts in the MBR (isohdpfx.bin,
	// 432 bytes): with it the image also boots as a disk.
	HybridMBR []byte
	// Time is every date the image records.
	Time time.Time
}

// Result describes an image written.
type Result struct {
	Bytes  int64
	SHA256 string
	// Hybrid says whether the image boots as a disk too.
	Hybrid bool
}

// Errors callers branch on.
var (
	// ErrNotHybrid: the isolinux.bin cannot boot from a hybrid MBR.
	ErrNotHybrid = errors.New("isolinux.bin is not isohybrid-capable")
	// ErrCorrupt: an image krgimage wrote does not read back as it should.
	ErrCorrupt = errors.New("corrupt image")
)

// Paths returns the image's file paths, sorted.
func (o *ISO) Paths() []string {
	out := make([]string, 0, len(o.Files))
	for p := range o.Files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// WriteFile writes the image to dst through a temporary file next to it,
// so dst is the old image or the new one, never half of one.
func (o *ISO) WriteFile(dst string) (*Result, error) {
	work, err := os.MkdirTemp(filepath.Dir(dst), ".krgimage-iso-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	ws := filepath.Join(work, "root")
	if err := o.stage(ws); err != nil {
		return nil, err
	}
	res := &Result{}
	err = fsutil.WriteAtomic(dst, 0o644, func(f *os.File) error {
		if err := o.finalize(f, ws); err != nil {
			return err
		}
		if err := bootRecordAt17(f); err != nil {
			return err
		}
		if err := fixJoliet(f); err != nil {
			return fmt.Errorf("repairing the Joliet tree: %w", err)
		}
		if err := stampISO(f, o.Time); err != nil {
			return fmt.Errorf("setting the image's dates: %w", err)
		}
		if o.HybridMBR != nil {
			if err := writeHybridMBR(f, o.HybridMBR, o.EFIBoot != ""); err != nil {
				return err
			}
			res.Hybrid = true
		}
		return digest(f, res)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// stage lays the files out in the workspace go-diskfs builds the image
// from. Modes are set explicitly (the umask must not change the image) and
// every time is the build time; the change times the kernel keeps are
// overwritten in the image afterwards by stampISO.
func (o *ISO) stage(ws string) error {
	dirs := map[string]bool{".": true}
	for _, p := range o.Paths() {
		if !fs.ValidPath(p) || p == "." {
			return fmt.Errorf("image path %q: not a clean relative path", p)
		}
		for d := path.Dir(p); !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		if err := os.MkdirAll(filepath.Join(ws, filepath.FromSlash(d)), 0o755); err != nil {
			return err
		}
	}
	for _, p := range o.Paths() {
		if err := copyInto(filepath.Join(ws, filepath.FromSlash(p)), o.Files[p]); err != nil {
			return fmt.Errorf("staging %s: %w", p, err)
		}
	}
	// Last, once no entry is created any more: modes without the umask,
	// and the build time everywhere. The change times the kernel keeps
	// cannot be set; stampISO overwrites them in the image.
	return filepath.WalkDir(ws, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := os.Chmod(p, 0o755); err != nil {
				return err
			}
		}
		return os.Chtimes(p, o.Time, o.Time)
	})
}

func copyInto(dst string, f File) error {
	in, err := f.open()
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	return os.Chmod(dst, mode)
}

// finalize has go-diskfs write the image into f.
func (o *ISO) finalize(f *os.File, ws string) error {
	iso, err := iso9660.Create(file.New(f, false), 0, 0, 2048, ws)
	if err != nil {
		return fmt.Errorf("creating the ISO 9660 filesystem: %w", err)
	}
	opts := iso9660.FinalizeOptions{RockRidge: true, Joliet: true, VolumeIdentifier: o.VolumeID}
	if o.BIOSBoot != "" || o.EFIBoot != "" {
		et := &iso9660.ElTorito{BootCatalog: o.BootCatalog}
		if o.BIOSBoot != "" {
			// isolinux loads the rest of itself: the firmware loads 4
			// sectors and isolinux finds itself through the boot info table.
			e := &iso9660.ElToritoEntry{Platform: iso9660.BIOS, Emulation: iso9660.NoEmulation, BootFile: o.BIOSBoot, BootTable: true}
			e.SetLoadSize(4)
			et.Entries = append(et.Entries, e)
		}
		if o.EFIBoot != "" {
			et.Entries = append(et.Entries, &iso9660.ElToritoEntry{Platform: iso9660.EFI, Emulation: iso9660.NoEmulation, BootFile: o.EFIBoot})
		}
		opts.ElTorito = et
	}
	if err := iso.Finalize(opts); err != nil {
		return fmt.Errorf("writing the ISO 9660 filesystem: %w", err)
	}
	return nil
}

func digest(f *os.File, res *Result) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	res.Bytes, res.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	return nil
}

// bootRecordAt17 moves the El Torito boot record to sector 17, where the
// El Torito specification puts it and where BIOSes (SeaBIOS among them)
// read it without looking further. go-diskfs v1.9.4 writes the Joliet
// descriptor there and the boot record after it; readers of the volume
// descriptor set take them in any order.
func bootRecordAt17(f rw) error {
	a, b := make([]byte, sectorSize), make([]byte, sectorSize)
	if _, err := f.ReadAt(a, 17*sectorSize); err != nil {
		return err
	}
	if _, err := f.ReadAt(b, 18*sectorSize); err != nil {
		return err
	}
	if a[0] != vdSupplement || b[0] != vdBoot || string(b[1:6]) != "CD001" {
		return nil
	}
	if _, err := f.WriteAt(b, 17*sectorSize); err != nil {
		return err
	}
	_, err := f.WriteAt(a, 18*sectorSize)
	return err
}
