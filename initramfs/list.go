package initramfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// ErrFormat: the input is not an initramfs krgimage can read.
var ErrFormat = errors.New("not a readable initramfs")

// Entry is one file of an initramfs, as "cpio -tv" would show it.
type Entry struct {
	Name   string
	Mode   uint32 // type and permission bits, as in the cpio header
	UID    uint32
	GID    uint32
	Links  uint32
	Inode  uint32
	Size   int64
	MTime  time.Time
	Target string // symlink target
	// Segment numbers the archives of a concatenated initramfs (early
	// microcode, then the main one), from 0.
	Segment int
}

// FileMode converts the cpio mode to Go's.
func (e Entry) FileMode() fs.FileMode {
	m := fs.FileMode(e.Mode & 0o777)
	switch e.Mode & 0o170000 {
	case 0o040000:
		m |= fs.ModeDir
	case 0o120000:
		m |= fs.ModeSymlink
	case 0o020000:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case 0o060000:
		m |= fs.ModeDevice
	case 0o010000:
		m |= fs.ModeNamedPipe
	case 0o140000:
		m |= fs.ModeSocket
	}
	if e.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// Limits against hostile input.
const (
	maxDecoded = 1 << 30
	maxName    = 4096
	maxSymlink = 4096
	maxEntries = 1 << 20
)

// List reads every entry of an initramfs: plain or compressed (gzip, xz,
// zstd, lzma) cpio newc archives, several concatenated as initramfs-tools
// writes them. Compression is the one of the last archive.
func List(r io.Reader) (entries []Entry, compression string, err error) {
	br := bufio.NewReaderSize(r, 64*1024)
	segment := 0
	for {
		if err := skipZeros(br); err != nil {
			if errors.Is(err, io.EOF) {
				if segment == 0 {
					return nil, "", fmt.Errorf("%w: empty input", ErrFormat)
				}
				return entries, compression, nil
			}
			return nil, "", err
		}
		magic, _ := br.Peek(6)
		var src io.Reader = br
		algo := "none"
		switch {
		case bytes.HasPrefix(magic, []byte("07070")):
		case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
			algo = "gzip"
			zr, err := gzip.NewReader(br)
			if err != nil {
				return nil, "", fmt.Errorf("%w: gzip: %v", ErrFormat, err)
			}
			src = zr
		case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
			algo = "xz"
			zr, err := xz.NewReader(br)
			if err != nil {
				return nil, "", fmt.Errorf("%w: xz: %v", ErrFormat, err)
			}
			src = zr
		case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			algo = "zstd"
			zr, err := zstd.NewReader(br, zstd.WithDecoderMaxMemory(maxDecoded), zstd.WithDecoderMaxWindow(64<<20))
			if err != nil {
				return nil, "", fmt.Errorf("%w: zstd: %v", ErrFormat, err)
			}
			defer zr.Close()
			src = zr
		case len(magic) >= 3 && magic[0] == 0x5d && magic[1] == 0 && magic[2] == 0:
			algo = "lzma"
			// The header's dictionary size is allocated up front: refuse
			// absurd ones rather than gigabytes.
			if h, _ := br.Peek(5); len(h) == 5 && uint32(h[1])|uint32(h[2])<<8|uint32(h[3])<<16|uint32(h[4])<<24 > 64<<20 {
				return nil, "", fmt.Errorf("%w: lzma dictionary larger than 64 MiB", ErrFormat)
			}
			zr, err := lzma.NewReader(br)
			if err != nil {
				return nil, "", fmt.Errorf("%w: lzma: %v", ErrFormat, err)
			}
			src = zr
		default:
			return nil, "", fmt.Errorf("%w: unknown data at archive %d (magic % x)", ErrFormat, segment, magic)
		}
		es, err := readNewc(src, segment, len(entries))
		entries = append(entries, es...)
		if err != nil {
			return nil, "", err
		}
		compression = algo
		segment++
		if algo != "none" {
			// A compressed archive runs to the end of its stream, which
			// we do not re-synchronize after.
			return entries, compression, nil
		}
	}
}

func skipZeros(br *bufio.Reader) error {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return err
		}
		if b != 0 {
			return br.UnreadByte()
		}
	}
}

func hexField(b []byte) (uint32, error) {
	v, err := strconv.ParseUint(string(b), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: bad header field %q", ErrFormat, b)
	}
	return uint32(v), nil
}

// readNewc reads one cpio newc (or crc) archive up to its trailer.
func readNewc(r io.Reader, segment, before int) ([]Entry, error) {
	var out []Entry
	var hdr [110]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return out, fmt.Errorf("%w: truncated header: %v", ErrFormat, err)
		}
		if string(hdr[:5]) != "07070" || (hdr[5] != '1' && hdr[5] != '2') {
			return out, fmt.Errorf("%w: bad cpio magic %q", ErrFormat, hdr[:6])
		}
		var f [13]uint32
		for i := range f {
			v, err := hexField(hdr[6+8*i : 14+8*i])
			if err != nil {
				return out, err
			}
			f[i] = v
		}
		ino, mode, uid, gid, nlink, mtime, size := f[0], f[1], f[2], f[3], f[4], f[5], f[6]
		namesize := f[11]
		if namesize == 0 || namesize > maxName {
			return out, fmt.Errorf("%w: name size %d", ErrFormat, namesize)
		}
		name := make([]byte, namesize)
		if _, err := io.ReadFull(r, name); err != nil {
			return out, fmt.Errorf("%w: truncated name: %v", ErrFormat, err)
		}
		if name[len(name)-1] != 0 {
			return out, fmt.Errorf("%w: name not NUL-terminated", ErrFormat)
		}
		if err := skip(r, pad4(110+int64(namesize))); err != nil {
			return out, err
		}
		e := Entry{Name: string(name[:len(name)-1]), Mode: mode, UID: uid, GID: gid, Links: nlink, Inode: ino,
			Size: int64(size), MTime: time.Unix(int64(mtime), 0).UTC(), Segment: segment}
		if e.Name == "TRAILER!!!" {
			return out, nil
		}
		if mode&0o170000 == 0o120000 {
			if size > maxSymlink {
				return out, fmt.Errorf("%w: symlink target of %d bytes", ErrFormat, size)
			}
			t := make([]byte, size)
			if _, err := io.ReadFull(r, t); err != nil {
				return out, fmt.Errorf("%w: truncated symlink: %v", ErrFormat, err)
			}
			e.Target = string(t)
		} else if err := skip(r, int64(size)); err != nil {
			return out, err
		}
		if err := skip(r, pad4(int64(size))); err != nil {
			return out, err
		}
		out = append(out, e)
		if before+len(out) > maxEntries {
			return out, fmt.Errorf("%w: more than %d entries", ErrFormat, maxEntries)
		}
	}
}

func pad4(n int64) int64 { return (4 - n%4) % 4 }

func skip(r io.Reader, n int64) error {
	if n == 0 {
		return nil
	}
	got, err := io.CopyN(io.Discard, r, n)
	if got != n {
		return fmt.Errorf("%w: truncated data: %v", ErrFormat, err)
	}
	return nil
}

// Format prints an entry as "cpio -tv --numeric-uid-gid" does, in UTC.
func (e Entry) Format() string {
	s := fmt.Sprintf("%s %3d %-8d %-8d %8d %s %s", modeString(e.Mode), e.Links, e.UID, e.GID, e.Size,
		e.MTime.Format("2006-01-02 15:04"), e.Name)
	if e.Target != "" {
		s += " -> " + e.Target
	}
	return s
}

// modeString renders a mode as ls and cpio do: drwxr-xr-x, -rwsr-xr-x...
func modeString(m uint32) string {
	types := map[uint32]byte{0o040000: 'd', 0o120000: 'l', 0o020000: 'c', 0o060000: 'b', 0o010000: 'p', 0o140000: 's'}
	b := []byte("----------")
	if t, ok := types[m&0o170000]; ok {
		b[0] = t
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	special := func(bit uint32, pos int, set, unset byte) {
		if m&bit != 0 {
			if b[pos] == '-' {
				b[pos] = unset
			} else {
				b[pos] = set
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}
