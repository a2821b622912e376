package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
)

const (
	// chunkedThreshold is the size from which a file's digest is chunked.
	// Below it the digest is the plain SHA-256 of the content, the value
	// sha256sum prints. From it on, an all-zero chunk costs nothing to
	// hash: a 1 TiB sparse lastlog would otherwise take ten minutes.
	chunkedThreshold = 64 << 20
	digestChunk      = 1 << 20
)

// Manifest keywords of the two digests.
const (
	keySHA256  = "sha256"
	keyChunked = "sparse-sha256"
)

// digester computes a file's content digest. The digest depends only on
// the content, never on where the holes are: a tree extracted by a tool
// that fills holes with zeros has the same digests.
//
// Files of chunkedThreshold bytes or more use the chunked form: SHA-256
// over "krgimage-sparse-sha256\x00", the size as 8 big-endian bytes, then
// for each 1 MiB chunk either 'D' and its bytes or, for a maximal run of
// all-zero chunks, 'Z' and the run's length in chunks as 8 big-endian
// bytes. Every tag fixes the length of what follows, so the encoding is
// unambiguous. The last chunk may be short; it is always written as data.
type digester struct {
	h       hash.Hash
	size    int64
	chunked bool
	buf     []byte // the current partial chunk (chunked form)
	zeros   uint64 // pending run of zero chunks
	done    int64  // bytes consumed
}

func newDigester(size int64) *digester {
	d := &digester{h: sha256.New(), size: size, chunked: size >= chunkedThreshold}
	if d.chunked {
		d.h.Write([]byte("krgimage-sparse-sha256\x00"))
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(size))
		d.h.Write(b[:])
		d.buf = make([]byte, 0, digestChunk)
	}
	return d
}

// Write consumes the next bytes of content.
func (d *digester) Write(p []byte) (int, error) {
	n := len(p)
	d.done += int64(n)
	if !d.chunked {
		d.h.Write(p)
		return n, nil
	}
	for len(p) > 0 {
		if len(d.buf) == 0 && len(p) >= digestChunk {
			// A whole chunk straight from p, without copying.
			d.chunk(p[:digestChunk])
			p = p[digestChunk:]
			continue
		}
		k := min(digestChunk-len(d.buf), len(p))
		d.buf = append(d.buf, p[:k]...)
		p = p[k:]
		if len(d.buf) == digestChunk {
			d.chunk(d.buf)
			d.buf = d.buf[:0]
		}
	}
	return n, nil
}

// Hole consumes n zero bytes. Whole zero chunks are counted, not hashed.
func (d *digester) Hole(n int64) {
	if !d.chunked {
		for n > 0 {
			k := min(n, int64(len(zeroChunk)))
			d.Write(zeroChunk[:k])
			n -= k
		}
		return
	}
	for n > 0 {
		if len(d.buf) == 0 && n >= digestChunk {
			whole := n / digestChunk
			d.zeros += uint64(whole)
			n -= whole * digestChunk
			d.done += whole * digestChunk
			continue
		}
		k := min(int64(digestChunk-len(d.buf)), n)
		d.buf = append(d.buf, zeroChunk[:k]...)
		d.done += k
		n -= k
		if len(d.buf) == digestChunk {
			d.chunk(d.buf)
			d.buf = d.buf[:0]
		}
	}
}

func (d *digester) chunk(c []byte) {
	if isZero(c) {
		d.zeros++
		return
	}
	d.flushZeros()
	d.h.Write([]byte{'D'})
	d.h.Write(c)
}

func (d *digester) flushZeros() {
	if d.zeros == 0 {
		return
	}
	var b [9]byte
	b[0] = 'Z'
	binary.BigEndian.PutUint64(b[1:], d.zeros)
	d.h.Write(b[:])
	d.zeros = 0
}

// Sum returns the manifest keyword and the hex digest. It reports false
// when the bytes consumed do not add up to the size.
func (d *digester) Sum() (key, sum string, ok bool) {
	if d.done != d.size {
		return "", "", false
	}
	if !d.chunked {
		return keySHA256, hex.EncodeToString(d.h.Sum(nil)), true
	}
	if len(d.buf) > 0 {
		if len(d.buf) == digestChunk {
			d.chunk(d.buf)
		} else {
			d.flushZeros()
			d.h.Write([]byte{'D'})
			d.h.Write(d.buf)
		}
		d.buf = d.buf[:0]
	}
	d.flushZeros()
	return keyChunked, hex.EncodeToString(d.h.Sum(nil)), true
}

// zeroChunk is never written to.
var zeroChunk = make([]byte, digestChunk)

func isZero(b []byte) bool {
	for len(b) > 0 {
		k := min(len(b), len(zeroChunk))
		if !bytes.Equal(b[:k], zeroChunk[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}
