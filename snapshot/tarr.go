package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The reader is krgimage's own for the same reasons as the writer, and
// because restoring a sparse file needs its map, which archive/tar keeps
// to itself. It reads ustar, POSIX pax (GNU sparse 0.0, 0.1 and 1.0), GNU
// (long names, old sparse) and v7 archives, and treats everything it
// cannot vouch for as corrupt: a bad checksum, a size that does not parse,
// an oversized extended header, a missing end-of-archive marker.

const (
	// maxMetaSize bounds PAX and GNU long-name headers, which are read
	// into memory.
	maxMetaSize = 1 << 20
	// maxSparseSegments bounds a sparse map, also read into memory.
	maxSparseSegments = 1 << 20
)

type tarReader struct {
	r         io.Reader
	remaining int64 // stored bytes left in the current entry
	pad       int64
	global    map[string]string
	err       error
	blk       [blockSize]byte
	// Offset counts the bytes consumed, for error messages.
	offset int64
}

func newTarReader(r io.Reader) *tarReader { return &tarReader{r: r} }

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func (tr *tarReader) readFull(b []byte) error {
	n, err := io.ReadFull(tr.r, b)
	tr.offset += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return corruptf("truncated at byte %d", tr.offset)
		}
		if errors.Is(err, ErrCorrupt) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

func (tr *tarReader) skip(n int64) error {
	for n > 0 {
		k := min(n, blockSize)
		if err := tr.readFull(tr.blk[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// Next advances to the next entry. It returns io.EOF after the
// end-of-archive marker, and an error wrapping ErrCorrupt when the archive
// ends without one.
func (tr *tarReader) Next() (*tarHeader, error) {
	if tr.err != nil {
		return nil, tr.err
	}
	h, err := tr.next()
	if err != nil {
		tr.err = err
	}
	return h, err
}

func (tr *tarReader) next() (*tarHeader, error) {
	if err := tr.skip(tr.remaining + tr.pad); err != nil {
		return nil, err
	}
	tr.remaining, tr.pad = 0, 0
	var local map[string]string
	var longName, longLink string
	var sparse0 []int64 // GNU sparse 0.0 offset/numbytes pairs, in order
	for {
		start := tr.offset
		if err := tr.readFull(tr.blk[:]); err != nil {
			return nil, err
		}
		if tr.blk == zeroBlock {
			// End of archive: two zero blocks. A lone one at the very end
			// is tolerated, as GNU tar does.
			n, err := io.ReadFull(tr.r, tr.blk[:])
			tr.offset += int64(n)
			switch {
			case n == 0 && errors.Is(err, io.EOF):
			case err != nil:
				return nil, corruptf("truncated at byte %d", tr.offset)
			case tr.blk != zeroBlock:
				return nil, corruptf("data after a zero block at byte %d", start)
			}
			if local != nil || longName != "" || longLink != "" {
				return nil, corruptf("extended header without an entry at byte %d", start)
			}
			return nil, io.EOF
		}
		h, err := parseUSTAR(&tr.blk)
		if err != nil {
			return nil, fmt.Errorf("header at byte %d: %w", start, err)
		}
		switch h.Typeflag {
		case typePAX, typeGlobal, typeLongN, typeLongL:
			if h.Size > maxMetaSize {
				return nil, corruptf("%c header of %d bytes at byte %d (limit %d)", h.Typeflag, h.Size, start, maxMetaSize)
			}
			data := make([]byte, h.Size)
			if err := tr.readFull(data); err != nil {
				return nil, err
			}
			if err := tr.skip(padding(h.Size)); err != nil {
				return nil, err
			}
			switch h.Typeflag {
			case typePAX, typeGlobal:
				recs, sp, err := parsePAX(data)
				if err != nil {
					return nil, fmt.Errorf("extended header at byte %d: %w", start, err)
				}
				if h.Typeflag == typeGlobal {
					if tr.global == nil {
						tr.global = map[string]string{}
					}
					for k, v := range recs {
						tr.global[k] = v
					}
					continue
				}
				if local == nil {
					local = map[string]string{}
				}
				for k, v := range recs {
					local[k] = v
				}
				sparse0 = append(sparse0, sp...)
			case typeLongN:
				longName = cString(data)
			case typeLongL:
				longLink = cString(data)
			}
			continue
		}
		rawSize := h.Size
		if err := tr.finish(h, local, longName, longLink, sparse0); err != nil {
			return nil, fmt.Errorf("entry %q at byte %d: %w", h.Name, start, err)
		}
		if h.Typeflag == typeGNUSp {
			segs, real, err := tr.readOldSparse()
			if err != nil {
				return nil, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			h.Typeflag, h.Sparse, h.Size = typeReg, segs, real
		}
		stored := rawSize
		if s, ok := h.PAX[paxSize]; ok {
			if stored, err = parseDecimal(s); err != nil {
				return nil, corruptf("entry %q: size %q", h.Name, s)
			}
		}
		tr.remaining, tr.pad = stored, padding(stored)
		if err := tr.readSparseMap(h, &stored); err != nil {
			return nil, fmt.Errorf("entry %q: %w", h.Name, err)
		}
		if h.Sparse != nil {
			if err := checkSparse(h.Sparse, h.Size, stored); err != nil {
				return nil, fmt.Errorf("entry %q: %w", h.Name, err)
			}
		} else if h.Typeflag == typeReg {
			h.Size = stored
		}
		return h, nil
	}
}

// finish applies extended records to h.
func (tr *tarReader) finish(h *tarHeader, local map[string]string, longName, longLink string, sparse0 []int64) error {
	recs := make(map[string]string, len(tr.global)+len(local))
	for k, v := range tr.global {
		recs[k] = v
	}
	for k, v := range local {
		recs[k] = v
	}
	if longName != "" {
		h.Name = longName
	}
	if longLink != "" {
		h.Linkname = longLink
	}
	var err error
	for k, v := range recs {
		switch k {
		case paxPath:
			h.Name = v
		case paxLinkpath:
			h.Linkname = v
		case paxUID:
			h.UID, err = parseDecimal(v)
		case paxGID:
			h.GID, err = parseDecimal(v)
		case paxMtime:
			h.ModTime, err = parsePAXTime(v)
		case paxAtime:
			h.AccessTime, err = parsePAXTime(v)
		}
		if err != nil {
			return corruptf("PAX record %s=%q", k, v)
		}
	}
	if strings.ContainsRune(h.Name, 0) || strings.ContainsRune(h.Linkname, 0) {
		return corruptf("NUL in a name")
	}
	if len(sparse0) > 0 {
		var b strings.Builder
		for i, n := range sparse0 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(n, 10))
		}
		recs[paxSpMap] = b.String()
	}
	h.PAX = recs
	if h.Typeflag == typeRegA || h.Typeflag == typeCont {
		h.Typeflag = typeReg
		if strings.HasSuffix(h.Name, "/") {
			h.Typeflag = typeDir
		}
	}
	return nil
}

// readSparseMap handles the PAX forms of GNU sparse files. stored is the
// number of data bytes, reduced by the size of a 1.0 map.
func (tr *tarReader) readSparseMap(h *tarHeader, stored *int64) error {
	major, minor := h.PAX[paxSpMajor], h.PAX[paxSpMinor]
	_, hasMap := h.PAX[paxSpMap]
	var is10 bool
	switch {
	case major == "1" && minor == "0":
		is10 = true
	case major == "0" && (minor == "0" || minor == "1"), major == "" && minor == "" && hasMap:
	case major != "" || minor != "":
		return fmt.Errorf("%w: GNU sparse format %s.%s", errors.ErrUnsupported, major, minor)
	default:
		return nil
	}
	if h.Typeflag != typeReg {
		return corruptf("sparse map on a non-regular entry")
	}
	if n := h.PAX[paxSpName]; n != "" {
		h.Name = n
	}
	real := h.PAX[paxSpSize]
	if real == "" {
		real = h.PAX[paxSpReal]
	}
	if real == "" {
		return corruptf("sparse file without a size")
	}
	size, err := parseDecimal(real)
	if err != nil {
		return corruptf("sparse size %q", real)
	}
	h.Size = size
	if !is10 {
		h.Sparse, err = parseSparseList(strings.Split(h.PAX[paxSpMap], ","))
		return err
	}
	// 1.0: decimal lines at the start of the data, padded to a block.
	var nums []string
	var line []byte
	consumed := int64(0)
	want := -1
	for want < 0 || len(nums) < 1+2*want {
		if consumed >= *stored {
			return corruptf("sparse map longer than the entry")
		}
		var c [1]byte
		if err := tr.readFull(c[:]); err != nil {
			return err
		}
		consumed++
		if c[0] != '\n' {
			if len(line) > 20 || c[0] < '0' || c[0] > '9' {
				return corruptf("sparse map")
			}
			line = append(line, c[0])
			continue
		}
		nums = append(nums, string(line))
		line = line[:0]
		if want < 0 {
			n, err := parseDecimal(nums[0])
			if err != nil || n > maxSparseSegments {
				return corruptf("sparse map of %q segments", nums[0])
			}
			want = int(n)
		}
	}
	p := padding(consumed)
	if consumed+p > *stored {
		return corruptf("sparse map longer than the entry")
	}
	if err := tr.skip(p); err != nil {
		return err
	}
	consumed += p
	*stored -= consumed
	tr.remaining = *stored
	h.Sparse, err = parseSparseList(nums[1:])
	return err
}

func parseSparseList(nums []string) ([]segment, error) {
	if len(nums)%2 != 0 || len(nums)/2 > maxSparseSegments {
		return nil, corruptf("sparse map")
	}
	segs := make([]segment, 0, len(nums)/2)
	for i := 0; i+1 < len(nums); i += 2 {
		off, err1 := parseDecimal(nums[i])
		n, err2 := parseDecimal(nums[i+1])
		if err1 != nil || err2 != nil {
			return nil, corruptf("sparse map")
		}
		segs = append(segs, segment{Off: off, Len: n})
	}
	return segs, nil
}

// checkSparse validates a map against the real size and the stored bytes,
// and drops empty segments.
// maxSparseSize bounds a sparse file's apparent size: 16 TiB, ext4's
// largest file. Holes cost no space, but a root holds no such file, and
// whether one restores would depend on the filesystem under ROOT.
const maxSparseSize = 1 << 44

func checkSparse(segs []segment, size, stored int64) error {
	if size > maxSparseSize {
		return corruptf("sparse file of %d bytes, more than %d", size, int64(maxSparseSize))
	}
	var end, total int64
	for _, s := range segs {
		if s.Off < end || s.Len < 0 || s.Off > size || s.Len > size-s.Off {
			return corruptf("sparse map out of order or past the end")
		}
		end = s.Off + s.Len
		total += s.Len
	}
	if total != stored {
		return corruptf("sparse map covers %d bytes, the entry stores %d", total, stored)
	}
	return nil
}

// readOldSparse reads the old GNU sparse map ('S'), whose first entries
// sit in the header block tr.blk still holds, and extension blocks follow.
func (tr *tarReader) readOldSparse() ([]segment, int64, error) {
	real, err := parseNumeric(tr.blk[483:495])
	if err != nil {
		return nil, 0, corruptf("old GNU sparse size")
	}
	var segs []segment
	add := func(b []byte) error {
		if b[0] == 0 {
			return nil
		}
		off, err1 := parseNumeric(b[0:12])
		n, err2 := parseNumeric(b[12:24])
		if err1 != nil || err2 != nil {
			return corruptf("old GNU sparse map")
		}
		segs = append(segs, segment{Off: off, Len: n})
		return nil
	}
	for i := 0; i < 4; i++ {
		if err := add(tr.blk[386+24*i:]); err != nil {
			return nil, 0, err
		}
	}
	ext := tr.blk[482] != 0
	for ext {
		if len(segs) > maxSparseSegments {
			return nil, 0, corruptf("old GNU sparse map too long")
		}
		if err := tr.readFull(tr.blk[:]); err != nil {
			return nil, 0, err
		}
		for i := 0; i < 21; i++ {
			if err := add(tr.blk[24*i:]); err != nil {
				return nil, 0, err
			}
		}
		ext = tr.blk[504] != 0
	}
	if segs == nil {
		segs = []segment{}
	}
	return segs, real, nil
}

// Read reads the current entry's stored data: for a sparse file, its data
// segments back to back.
func (tr *tarReader) Read(p []byte) (int, error) {
	if tr.err != nil {
		return 0, tr.err
	}
	if tr.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > tr.remaining {
		p = p[:tr.remaining]
	}
	n, err := tr.r.Read(p)
	tr.offset += int64(n)
	tr.remaining -= int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) && tr.remaining > 0 {
			err = corruptf("truncated at byte %d", tr.offset)
		} else if err != io.EOF && !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if err != io.EOF {
			tr.err = err
		}
		if tr.remaining == 0 && err == io.EOF {
			err = nil
		}
	}
	return n, err
}

func parseUSTAR(b *[blockSize]byte) (*tarHeader, error) {
	want, err := parseNumeric(b[148:156])
	if err != nil {
		return nil, corruptf("header checksum field")
	}
	var unsigned, signed int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	if want != unsigned && want != signed {
		return nil, corruptf("header checksum")
	}
	h := &tarHeader{Typeflag: b[156]}
	magic := string(b[257:265])
	ustar := magic == "ustar\x0000"
	gnu := magic == "ustar  \x00"
	h.Name = cString(b[0:100])
	if ustar && b[345] != 0 {
		h.Name = cString(b[345:500]) + "/" + h.Name
	}
	h.Linkname = cString(b[157:257])
	fields := []struct {
		dst *int64
		b   []byte
	}{{&h.Mode, b[100:108]}, {&h.UID, b[108:116]}, {&h.GID, b[116:124]}, {&h.Size, b[124:136]}}
	if ustar || gnu {
		fields = append(fields, struct {
			dst *int64
			b   []byte
		}{&h.Devmajor, b[329:337]}, struct {
			dst *int64
			b   []byte
		}{&h.Devminor, b[337:345]})
	}
	for _, f := range fields {
		if *f.dst, err = parseNumeric(f.b); err != nil {
			return nil, corruptf("header field %q", f.b)
		}
	}
	mt, err := parseNumeric(b[136:148])
	if err != nil {
		return nil, corruptf("header mtime %q", b[136:148])
	}
	h.ModTime = time.Unix(mt, 0)
	if h.Size < 0 {
		return nil, corruptf("negative size")
	}
	return h, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// parseNumeric reads an octal field, or a base-256 one (GNU, for values
// octal cannot hold).
func parseNumeric(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		// Two's complement, big-endian, the flag bit excluded.
		var inv byte
		if b[0]&0x40 != 0 {
			inv = 0xff
		}
		var x uint64
		for i, c := range b {
			c ^= inv
			if i == 0 {
				c &= 0x7f
			}
			if x>>56 != 0 {
				return 0, errors.New("base-256 value out of range")
			}
			x = x<<8 | uint64(c)
		}
		if x>>63 != 0 {
			return 0, errors.New("base-256 value out of range")
		}
		if inv != 0 {
			return ^int64(x), nil
		}
		return int64(x), nil
	}
	s := strings.Trim(string(b), " \x00")
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 8, 64)
	if err != nil || v < 0 {
		return 0, errors.New("bad octal value")
	}
	return v, nil
}

func parseDecimal(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || s[0] == '+' {
		return 0, errors.New("bad decimal value")
	}
	return v, nil
}

func parsePAXTime(s string) (time.Time, error) {
	sec, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(sec, "-")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || sec == "" || sec[0] == '+' {
		return time.Time{}, errors.New("bad time")
	}
	var ns int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		for len(frac) < 9 {
			frac += "0"
		}
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil || frac[0] == '-' || frac[0] == '+' {
			return time.Time{}, errors.New("bad time")
		}
	}
	if neg && ns != 0 {
		return time.Unix(n-1, 1e9-ns), nil
	}
	return time.Unix(n, ns), nil
}

// parsePAX parses extended header records. GNU sparse 0.0 repeats
// GNU.sparse.offset and GNU.sparse.numbytes; their values are returned in
// order.
func parsePAX(data []byte) (map[string]string, []int64, error) {
	recs := map[string]string{}
	var sparse0 []int64
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		if sp <= 0 || sp > 20 {
			return nil, nil, corruptf("PAX record length")
		}
		n, err := parseDecimal(string(data[:sp]))
		if err != nil || n <= int64(sp)+1 || n > int64(len(data)) {
			return nil, nil, corruptf("PAX record length")
		}
		rec := data[sp+1 : n]
		data = data[n:]
		if len(rec) == 0 || rec[len(rec)-1] != '\n' {
			return nil, nil, corruptf("PAX record not ending in a newline")
		}
		rec = rec[:len(rec)-1]
		eq := bytes.IndexByte(rec, '=')
		if eq <= 0 {
			return nil, nil, corruptf("PAX record without a key")
		}
		k, v := string(rec[:eq]), string(rec[eq+1:])
		switch k {
		case "GNU.sparse.offset", "GNU.sparse.numbytes":
			x, err := parseDecimal(v)
			if err != nil || len(sparse0) >= 2*maxSparseSegments {
				return nil, nil, corruptf("PAX record %s", k)
			}
			if (k == "GNU.sparse.offset") != (len(sparse0)%2 == 0) {
				return nil, nil, corruptf("GNU sparse 0.0 records out of order")
			}
			sparse0 = append(sparse0, x)
			continue
		}
		recs[k] = v
	}
	return recs, sparse0, nil
}
