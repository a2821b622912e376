package media

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// ISO 9660 layout (ECMA-119) used to revisit an image go-diskfs wrote.
const (
	sectorSize = 2048
	// Volume descriptors start at sector 16: type byte, "CD001".
	vdStart       = 16
	vdBoot        = 0
	vdPrimary     = 1
	vdSupplement  = 2
	vdTerminator  = 255
	vdRootRecord  = 156
	vdCreated     = 813
	vdModified    = 830
	vdExpires     = 847
	vdEffective   = 864
	recordDate    = 18
	recordFlags   = 25
	recordNameLen = 32
	flagDir       = 0x02
)

// stampISO makes an image's bytes depend on its content only. go-diskfs
// records the wall clock in the volume descriptors and the boot catalog's
// entry, the host's change times in Rock Ridge, and the owners and link
// counts of the workspace; this walks every directory record of both
// trees (ISO 9660 with Rock Ridge, and Joliet) and sets every date to t,
// owners to root, and link counts to what the image itself holds. The
// volume never expires.
func stampISO(f rw, t time.Time) error {
	t = t.UTC()
	s := &stamper{f: f, t: t, nlink: map[uint32]uint32{}}
	for sec := int64(vdStart); ; sec++ {
		vd := make([]byte, sectorSize)
		if _, err := f.ReadAt(vd, sec*sectorSize); err != nil {
			return fmt.Errorf("%w: volume descriptor %d: %v", ErrCorrupt, sec, err)
		}
		if string(vd[1:6]) != "CD001" {
			return fmt.Errorf("%w: no volume descriptor at sector %d", ErrCorrupt, sec)
		}
		switch vd[0] {
		case vdTerminator:
			return nil
		case vdPrimary, vdSupplement:
			for _, off := range []int{vdCreated, vdModified, vdEffective} {
				copy(vd[off:off+17], vdDate(t))
			}
			copy(vd[vdExpires:vdExpires+17], append([]byte("0000000000000000"), 0))
			root := vd[vdRootRecord : vdRootRecord+34]
			copy(root[recordDate:recordDate+7], recDate(t))
			// Only the primary tree has Rock Ridge entries.
			susp := vd[0] == vdPrimary
			if err := s.walk(extent(root), susp); err != nil {
				return err
			}
			if _, err := f.WriteAt(vd, sec*sectorSize); err != nil {
				return err
			}
		}
		if sec > vdStart+64 {
			return fmt.Errorf("%w: no volume descriptor set terminator", ErrCorrupt)
		}
	}
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

type stamper struct {
	f rw
	t time.Time
	// nlink is a directory's link count by its extent: 2 and one per
	// subdirectory, as a POSIX directory has.
	nlink map[uint32]uint32
	// skip is the SUSP "SP" entry's count of bytes to skip in each
	// record's system use area.
	skip int
}

type dirExtent struct{ lba, size uint32 }

func extent(rec []byte) dirExtent {
	return dirExtent{binary.LittleEndian.Uint32(rec[2:6]), binary.LittleEndian.Uint32(rec[10:14])}
}

// walk stamps the tree below root: first its shape (the link counts),
// then every record.
func (s *stamper) walk(root dirExtent, susp bool) error {
	var dirs []dirExtent
	seen := map[uint32]bool{}
	queue := []dirExtent{root}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d.lba] {
			continue
		}
		seen[d.lba] = true
		if len(seen) > 1<<16 {
			return fmt.Errorf("%w: too many directories", ErrCorrupt)
		}
		dirs = append(dirs, d)
		buf, err := s.read(d)
		if err != nil {
			return err
		}
		n := uint32(2)
		err = records(buf, func(rec []byte) error {
			if isDir(rec) && !isDot(rec) {
				n++
				queue = append(queue, extent(rec))
			}
			return nil
		})
		if err != nil {
			return err
		}
		s.nlink[d.lba] = n
	}
	for _, d := range dirs {
		buf, err := s.read(d)
		if err != nil {
			return err
		}
		err = records(buf, func(rec []byte) error {
			copy(rec[recordDate:recordDate+7], recDate(s.t))
			if !susp {
				return nil
			}
			nl := uint32(1)
			if isDir(rec) {
				nl = s.nlink[extent(rec).lba]
			}
			return s.systemUse(rec, nl)
		})
		if err != nil {
			return err
		}
		if _, err := s.f.WriteAt(buf, int64(d.lba)*sectorSize); err != nil {
			return err
		}
	}
	return nil
}

func (s *stamper) read(d dirExtent) ([]byte, error) {
	if d.size == 0 || d.size > 64<<20 {
		return nil, fmt.Errorf("%w: directory at sector %d is %d bytes", ErrCorrupt, d.lba, d.size)
	}
	if err := within(s.f, int64(d.lba)*sectorSize, int64(d.size)); err != nil {
		return nil, fmt.Errorf("%w: directory at sector %d: %v", ErrCorrupt, d.lba, err)
	}
	buf := make([]byte, (int(d.size)+sectorSize-1)/sectorSize*sectorSize)
	if _, err := s.f.ReadAt(buf, int64(d.lba)*sectorSize); err != nil {
		return nil, fmt.Errorf("%w: directory at sector %d: %v", ErrCorrupt, d.lba, err)
	}
	return buf[:d.size], nil
}

// records calls fn with each directory record of a directory's extent.
// A record never crosses a sector; a zero length byte pads to the next.
func records(buf []byte, fn func([]byte) error) error {
	for off := 0; off < len(buf); {
		n := int(buf[off])
		if n == 0 {
			off = (off/sectorSize + 1) * sectorSize
			continue
		}
		if n < 34 || off+n > len(buf) || 33+int(buf[off+recordNameLen]) > n {
			return fmt.Errorf("%w: directory record of %d bytes at offset %d", ErrCorrupt, n, off)
		}
		if err := fn(buf[off : off+n]); err != nil {
			return err
		}
		off += n
	}
	return nil
}

func isDir(rec []byte) bool { return rec[recordFlags]&flagDir != 0 }

// isDot: the directory's own record or its parent's (names 0x00, 0x01).
func isDot(rec []byte) bool { return rec[recordNameLen] == 1 && rec[33] <= 1 }

// systemUse stamps a record's SUSP entries, following a continuation
// area (CE) when there is one.
func (s *stamper) systemUse(rec []byte, nlink uint32) error {
	start := 33 + int(rec[recordNameLen])
	if start%2 == 1 {
		start++
	}
	if isDot(rec) && rec[33] == 0 && len(rec) >= start+7 && string(rec[start:start+2]) == "SP" {
		s.skip = int(rec[start+6])
	} else {
		start += s.skip
	}
	if start > len(rec) {
		return nil
	}
	ce, err := s.entries(rec[start:], nlink)
	if err != nil {
		return err
	}
	for hops := 0; ce != nil; hops++ {
		if hops > 16 {
			return fmt.Errorf("%w: SUSP continuation loop", ErrCorrupt)
		}
		area := make([]byte, ce.length)
		at := int64(ce.lba)*sectorSize + int64(ce.offset)
		if _, err := s.f.ReadAt(area, at); err != nil {
			return fmt.Errorf("%w: SUSP continuation area: %v", ErrCorrupt, err)
		}
		if ce, err = s.entries(area, nlink); err != nil {
			return err
		}
		if _, err := s.f.WriteAt(area, at); err != nil {
			return err
		}
	}
	return nil
}

type continuation struct{ lba, offset, length uint32 }

// entries stamps the SUSP entries of one area: TF's dates, PX's owners
// and link count. It returns the continuation area the area points to.
func (s *stamper) entries(a []byte, nlink uint32) (*continuation, error) {
	var ce *continuation
	for off := 0; off+4 <= len(a); {
		sig, n := string(a[off:off+2]), int(a[off+2])
		if n < 4 || off+n > len(a) {
			break
		}
		e := a[off : off+n]
		switch sig {
		case "ST":
			return ce, nil
		case "CE":
			if n >= 28 {
				ce = &continuation{binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint32(e[12:]), binary.LittleEndian.Uint32(e[20:])}
				if ce.offset >= sectorSize || ce.length > sectorSize {
					return nil, fmt.Errorf("%w: SUSP continuation of %d bytes at %d", ErrCorrupt, ce.length, ce.offset)
				}
			}
		case "PX":
			if n >= 36 {
				both32(e[12:], nlink)
				both32(e[20:], 0)
				both32(e[28:], 0)
			}
		case "TF":
			if n >= 5 {
				size, date := 7, recDate(s.t)
				if e[4]&0x80 != 0 {
					size, date = 17, vdDate(s.t)
				}
				for p := 5; p+size <= n; p += size {
					copy(e[p:p+size], date)
				}
			}
		}
		off += n
	}
	return ce, nil
}

// both32 writes v in ISO 9660's both-byte-order form.
func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b[0:4], v)
	binary.BigEndian.PutUint32(b[4:8], v)
}

// recDate is a directory record's date: years since 1900, month, day,
// hour, minute, second, offset from UTC in quarter hours.
func recDate(t time.Time) []byte {
	return []byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

// vdDate is a volume descriptor's date: YYYYMMDDHHMMSScc in digits, then
// the offset from UTC.
func vdDate(t time.Time) []byte {
	return append([]byte(t.Format("20060102150405")+fmt.Sprintf("%02d", t.Nanosecond()/1e7)), 0)
}
