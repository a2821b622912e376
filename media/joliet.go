package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// fixJoliet repairs the Joliet tree go-diskfs v1.9.4 writes: the records
// of a Joliet directory's subdirectories point to the ISO 9660 tree's
// directories, so a reader that takes the Joliet names (Windows does)
// finds 8.3 names one level down, and Joliet directories below the root
// are never reached. The Joliet path table, which go-diskfs writes right,
// says where each Joliet directory is: every subdirectory record is
// pointed there, with that directory's size.
func fixJoliet(f rw) error {
	var svd []byte
	for sec := int64(vdStart); sec < vdStart+64; sec++ {
		vd := make([]byte, sectorSize)
		if _, err := f.ReadAt(vd, sec*sectorSize); err != nil {
			return fmt.Errorf("%w: volume descriptor %d: %v", ErrCorrupt, sec, err)
		}
		if vd[0] == vdTerminator {
			break
		}
		// Joliet's escape sequences: UCS-2 levels 1 to 3.
		if vd[0] == vdSupplement && vd[88] == '%' && vd[89] == '/' && bytes.IndexByte([]byte("@CE"), vd[90]) >= 0 {
			svd = vd
			break
		}
	}
	if svd == nil {
		return nil
	}
	size := binary.LittleEndian.Uint32(svd[132:136])
	if size > 1<<20 {
		return fmt.Errorf("%w: Joliet path table of %d bytes", ErrCorrupt, size)
	}
	pt := make([]byte, size)
	if _, err := f.ReadAt(pt, int64(binary.LittleEndian.Uint32(svd[140:144]))*sectorSize); err != nil {
		return fmt.Errorf("%w: Joliet path table: %v", ErrCorrupt, err)
	}
	// Path table entries are numbered from 1, the root.
	type dir struct {
		parent uint16
		name   string
		ext    dirExtent
	}
	var dirs []dir
	for off := 0; off+8 <= len(pt); {
		n := int(pt[off])
		if n == 0 || off+8+n > len(pt) {
			return fmt.Errorf("%w: Joliet path table entry at %d", ErrCorrupt, off)
		}
		d := dir{parent: binary.LittleEndian.Uint16(pt[off+6:]), name: string(pt[off+8 : off+8+n]),
			ext: dirExtent{lba: binary.LittleEndian.Uint32(pt[off+2:])}}
		// The size is the directory's own "." record's.
		self := make([]byte, 34)
		if _, err := f.ReadAt(self, int64(d.ext.lba)*sectorSize); err != nil {
			return fmt.Errorf("%w: Joliet directory at %d: %v", ErrCorrupt, d.ext.lba, err)
		}
		d.ext.size = extent(self).size
		dirs = append(dirs, d)
		off += 8 + n + n%2
	}
	s := &stamper{f: f}
	for i, d := range dirs {
		buf, err := s.read(d.ext)
		if err != nil {
			return err
		}
		err = records(buf, func(rec []byte) error {
			if !isDir(rec) || isDot(rec) {
				return nil
			}
			name := string(rec[33 : 33+int(rec[recordNameLen])])
			for _, c := range dirs {
				if int(c.parent) == i+1 && c.name == name {
					both32(rec[2:], c.ext.lba)
					both32(rec[10:], c.ext.size)
					return nil
				}
			}
			return fmt.Errorf("%w: Joliet directory %q is not in the path table", ErrCorrupt, name)
		})
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(buf, int64(d.ext.lba)*sectorSize); err != nil {
			return err
		}
	}
	return nil
}
