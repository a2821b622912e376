package snapshot

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The tar writer is krgimage's own: archive/tar cannot write sparse files
// and drops GNU.sparse records, and owning the bytes keeps the output
// stable across Go releases.

const blockSize = 512

// Typeflags.
const (
	typeReg     = '0'
	typeRegA    = '\x00'
	typeLink    = '1'
	typeSymlink = '2'
	typeChar    = '3'
	typeBlock   = '4'
	typeDir     = '5'
	typeFifo    = '6'
	typeCont    = '7'
	typePAX     = 'x'
	typeGlobal  = 'g'
	typeLongN   = 'L'
	typeLongL   = 'K'
	typeGNUSp   = 'S'
)

// PAX record keys.
const (
	paxPath      = "path"
	paxLinkpath  = "linkpath"
	paxSize      = "size"
	paxUID       = "uid"
	paxGID       = "gid"
	paxMtime     = "mtime"
	paxAtime     = "atime"
	paxCharset   = "hdrcharset"
	paxXattr     = "SCHILY.xattr."
	paxACLAccess = "SCHILY.acl.access"
	paxACLDef    = "SCHILY.acl.default"
	paxSpMajor   = "GNU.sparse.major"
	paxSpMinor   = "GNU.sparse.minor"
	paxSpName    = "GNU.sparse.name"
	paxSpReal    = "GNU.sparse.realsize"
	paxSpSize    = "GNU.sparse.size"
	paxSpMap     = "GNU.sparse.map"
)

// tarHeader is one archive member as krgimage writes and reads it.
type tarHeader struct {
	Name       string
	Linkname   string
	Typeflag   byte
	Mode       int64 // permission bits with setuid, setgid and sticky
	UID, GID   int64
	Size       int64 // logical size: the real size of a sparse file
	ModTime    time.Time
	AccessTime time.Time // read only; krgimage does not write atimes
	Devmajor   int64
	Devminor   int64
	// PAX holds the extra records to write, or every record read (global
	// ones included).
	PAX map[string]string
	// Sparse lists the data segments of a sparse file; nil otherwise. A
	// sparse file with no data at all has an empty, non-nil list.
	Sparse []segment
}

type segment struct{ Off, Len int64 }

func (h *tarHeader) stored() int64 {
	if h.Sparse == nil {
		return h.Size
	}
	var n int64
	for _, s := range h.Sparse {
		n += s.Len
	}
	return n
}

type tarWriter struct {
	w         io.Writer
	remaining int64 // data bytes the current entry still expects
	pad       int64
	err       error
}

func newTarWriter(w io.Writer) *tarWriter { return &tarWriter{w: w} }

var zeroBlock [blockSize]byte

// WriteHeader writes h, with a PAX header first when a field does not fit
// ustar or h carries records. For a sparse file it also writes the GNU 1.0
// sparse map, so the caller writes only the data segments.
func (tw *tarWriter) WriteHeader(h *tarHeader) error {
	if tw.err != nil {
		return tw.err
	}
	if tw.remaining > 0 {
		return fmt.Errorf("tar: %d bytes missing from the previous entry", tw.remaining)
	}
	if err := tw.flushPad(); err != nil {
		return err
	}
	rec := make(map[string]string, len(h.PAX)+4)
	for k, v := range h.PAX {
		rec[k] = v
	}
	name := h.Name
	var spMap []byte
	stored := h.Size
	if h.Sparse != nil {
		// GNU sparse format 1.0: the real name and size in PAX records, the
		// map at the start of the data. GNU tar and bsdtar read it.
		rec[paxSpMajor], rec[paxSpMinor] = "1", "0"
		rec[paxSpName] = name
		rec[paxSpReal] = strconv.FormatInt(h.Size, 10)
		spMap = formatSparseMap(h.Sparse, h.Size)
		stored = int64(len(spMap)) + h.stored()
		name = "./GNUSparseFile.0/" + asciiName(baseName(name), 80)
	}
	if !fitsUSTAR(name) {
		rec[paxPath] = name
	}
	if h.Linkname != "" && (len(h.Linkname) > 100 || !isASCII(h.Linkname)) {
		rec[paxLinkpath] = h.Linkname
	}
	if !utf8.ValidString(rec[paxPath]) || !utf8.ValidString(rec[paxLinkpath]) || !utf8.ValidString(rec[paxSpName]) {
		// Names are bytes on Linux; BINARY tells readers not to convert.
		rec[paxCharset] = "BINARY"
	}
	if stored > maxOctal(12) {
		rec[paxSize] = strconv.FormatInt(stored, 10)
	}
	if h.UID > maxOctal(8) || h.UID < 0 {
		rec[paxUID] = strconv.FormatInt(h.UID, 10)
	}
	if h.GID > maxOctal(8) || h.GID < 0 {
		rec[paxGID] = strconv.FormatInt(h.GID, 10)
	}
	mt := h.ModTime.Unix()
	if h.ModTime.Nanosecond() != 0 || mt < 0 || mt > maxOctal(12) {
		rec[paxMtime] = formatPAXTime(h.ModTime)
	}
	if len(rec) > 0 {
		var b strings.Builder
		for _, k := range slices.Sorted(mapsKeys(rec)) {
			r, err := paxRecord(k, rec[k])
			if err != nil {
				return err
			}
			b.WriteString(r)
		}
		data := b.String()
		ph := &tarHeader{Name: "./PaxHeaders/" + asciiName(baseName(name), 80), Typeflag: typePAX, Mode: 0o644, Size: int64(len(data))}
		if err := tw.writeBlock(ustarBlock(ph, ph.Name, int64(len(data)))); err != nil {
			return err
		}
		if err := tw.writeData([]byte(data)); err != nil {
			return err
		}
	}
	if err := tw.writeBlock(ustarBlock(h, name, stored)); err != nil {
		return err
	}
	tw.remaining = stored
	tw.pad = padding(stored)
	if spMap != nil {
		if _, err := tw.Write(spMap); err != nil {
			return err
		}
	}
	return nil
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Write writes data of the current entry.
func (tw *tarWriter) Write(p []byte) (int, error) {
	if tw.err != nil {
		return 0, tw.err
	}
	if int64(len(p)) > tw.remaining {
		return 0, errors.New("tar: write past the entry's size")
	}
	n, err := tw.w.Write(p)
	tw.remaining -= int64(n)
	if err != nil {
		tw.err = err
	}
	return n, err
}

// copyFrom copies at most n bytes of the current entry's data from r. It
// stops early, without an error, where r ends.
func (tw *tarWriter) copyFrom(r io.Reader, n int64, buf []byte) (int64, error) {
	if tw.err != nil {
		return 0, tw.err
	}
	if n > tw.remaining {
		return 0, errors.New("tar: write past the entry's size")
	}
	lr := io.LimitReader(r, n)
	var m int64
	var err error
	if rf, ok := tw.w.(io.ReaderFrom); ok {
		m, err = rf.ReadFrom(lr)
	} else {
		m, err = io.CopyBuffer(tw.w, lr, buf)
	}
	tw.remaining -= m
	if err != nil {
		tw.err = err
	}
	return m, err
}

func (tw *tarWriter) writeData(p []byte) error {
	if _, err := tw.w.Write(p); err != nil {
		tw.err = err
		return err
	}
	return tw.writeZeros(padding(int64(len(p))))
}

func (tw *tarWriter) flushPad() error {
	err := tw.writeZeros(tw.pad)
	tw.pad = 0
	return err
}

func (tw *tarWriter) writeZeros(n int64) error {
	for n > 0 {
		k := min(n, blockSize)
		if _, err := tw.w.Write(zeroBlock[:k]); err != nil {
			tw.err = err
			return err
		}
		n -= k
	}
	return nil
}

func (tw *tarWriter) writeBlock(b *[blockSize]byte) error {
	if _, err := tw.w.Write(b[:]); err != nil {
		tw.err = err
		return err
	}
	return nil
}

// Close ends the archive with two zero blocks.
func (tw *tarWriter) Close() error {
	if tw.err != nil {
		return tw.err
	}
	if tw.remaining > 0 {
		return fmt.Errorf("tar: %d bytes missing from the last entry", tw.remaining)
	}
	if err := tw.flushPad(); err != nil {
		return err
	}
	return tw.writeZeros(2 * blockSize)
}

func padding(n int64) int64 { return -n & (blockSize - 1) }

func maxOctal(field int) int64 { return 1<<(3*(field-1)) - 1 }

// ustarBlock formats the ustar header of h under name (which fitsUSTAR or
// is shortened: the PAX path record then holds the real one).
func ustarBlock(h *tarHeader, name string, size int64) *[blockSize]byte {
	var b [blockSize]byte
	prefix := ""
	if len(name) > 100 {
		if p, s, ok := splitUSTAR(name); ok {
			prefix, name = p, s
		} else {
			name = asciiName(name, 100)
		}
	} else if !isASCII(name) {
		name = asciiName(name, 100)
	}
	copy(b[0:100], name)
	putOctal(b[100:108], h.Mode&0o7777)
	putOctal(b[108:116], clampOctal(h.UID, 8))
	putOctal(b[116:124], clampOctal(h.GID, 8))
	putOctal(b[124:136], clampOctal(size, 12))
	putOctal(b[136:148], clampOctal(h.ModTime.Unix(), 12))
	b[156] = h.Typeflag
	link := h.Linkname
	if len(link) > 100 || !isASCII(link) {
		link = asciiName(link, 100)
	}
	copy(b[157:257], link)
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	putOctal(b[329:337], clampOctal(h.Devmajor, 8))
	putOctal(b[337:345], clampOctal(h.Devminor, 8))
	copy(b[345:500], prefix)
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	putOctal(b[148:155], sum) // six digits, NUL, then the space left there
	return &b
}

func clampOctal(v int64, field int) int64 {
	if v < 0 || v > maxOctal(field) {
		return 0 // the PAX record holds the value
	}
	return v
}

// putOctal writes v, which fits (clampOctal), as zero-padded octal digits
// and a NUL.
func putOctal(b []byte, v int64) {
	n := len(b) - 1
	for i := n - 1; i >= 0; i-- {
		b[i] = '0' + byte(v&7)
		v >>= 3
	}
	b[n] = 0
}

func fitsUSTAR(name string) bool {
	if !isASCII(name) {
		return false
	}
	if len(name) <= 100 {
		return true
	}
	_, _, ok := splitUSTAR(name)
	return ok
}

// splitUSTAR splits a long name into ustar's prefix and name fields.
func splitUSTAR(name string) (prefix, suffix string, ok bool) {
	length := len(name)
	if length <= 100 || !isASCII(name) {
		return "", "", false
	}
	if length > 156 {
		length = 156
	} else if name[length-1] == '/' {
		length--
	}
	i := strings.LastIndex(name[:length], "/")
	if i <= 0 || len(name)-i-1 > 100 || len(name)-i-1 == 0 || i > 155 {
		return "", "", false
	}
	return name[:i], name[i+1:], true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || s[i] == 0 {
			return false
		}
	}
	return true
}

// asciiName shortens s to at most n printable ASCII bytes, for the ustar
// fields of entries whose real name is in a PAX record.
func asciiName(s string, n int) string {
	b := []byte(s)
	if len(b) > n {
		b = b[:n]
	}
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '_'
		}
	}
	return string(b)
}

func baseName(name string) string {
	name = strings.TrimSuffix(name, "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// paxRecord formats "LEN key=value\n", where LEN counts itself.
func paxRecord(k, v string) (string, error) {
	if k == "" || strings.ContainsAny(k, "=\x00") {
		return "", fmt.Errorf("tar: invalid PAX key %q", k)
	}
	body := " " + k + "=" + v + "\n"
	n := len(body) + 1
	for {
		m := len(body) + len(strconv.Itoa(n))
		if m == n {
			break
		}
		n = m
	}
	return strconv.Itoa(n) + body, nil
}

func formatPAXTime(t time.Time) string {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	if nsec == 0 {
		return strconv.FormatInt(sec, 10)
	}
	sign := ""
	if sec < 0 {
		sign, sec, nsec = "-", -(sec + 1), 1e9-nsec
	}
	return fmt.Sprintf("%s%d.%09d", sign, sec, nsec)
}

// formatSparseMap renders a GNU 1.0 sparse map: the count, then offset and
// length of each data segment, one decimal number a line, padded to a
// block. A file ending in a hole gets a last empty segment at its end, as
// GNU tar writes it.
func formatSparseMap(segs []segment, size int64) []byte {
	list := segs
	if n := len(segs); n == 0 || segs[n-1].Off+segs[n-1].Len < size {
		list = append(slices.Clip(segs), segment{Off: size})
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(list)) + "\n")
	for _, s := range list {
		b.WriteString(strconv.FormatInt(s.Off, 10) + "\n" + strconv.FormatInt(s.Len, 10) + "\n")
	}
	out := []byte(b.String())
	return append(out, make([]byte, padding(int64(len(out))))...)
}
