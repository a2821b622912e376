package snapshot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"
)

// Compression names an archive compression.
type Compression string

// Compressions.
const (
	Zstd Compression = "zstd"
	Gzip Compression = "gzip"
	XZ   Compression = "xz"
	None Compression = "none"
)

// DefaultLevel is the level each compression uses when Options.Level is 0.
var DefaultLevel = map[Compression]int{Zstd: 3, Gzip: 6, XZ: 6, None: 0}

// ParseCompression checks a compression name.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case Zstd, Gzip, XZ, None:
		return c, nil
	}
	return "", fmt.Errorf("unknown compression %q (allowed: zstd, gzip, xz, none)", s)
}

// CompressionForPath picks a compression from a file name's extension,
// zstd when it says nothing (the rule recipes use).
func CompressionForPath(p string) Compression {
	switch {
	case strings.HasSuffix(p, ".gz"), strings.HasSuffix(p, ".tgz"):
		return Gzip
	case strings.HasSuffix(p, ".xz"), strings.HasSuffix(p, ".txz"):
		return XZ
	case strings.HasSuffix(p, ".tar"):
		return None
	}
	return Zstd
}

var levelRange = map[Compression][2]int{Zstd: {1, 22}, Gzip: {1, 9}, XZ: {0, 9}, None: {0, 0}}

func checkLevel(c Compression, level int) error {
	if r := levelRange[c]; level < r[0] || level > r[1] {
		return fmt.Errorf("%s level %d out of range %d..%d", c, level, r[0], r[1])
	}
	return nil
}

// zstdFrame is the size of the independent zstd frames krgimage writes.
// Frames are compressed in parallel and written in order, so the output
// depends on the level and this size, never on the number of threads.
// 16 MiB costs under 1% of ratio against one frame on a Debian root.
const zstdFrame = 16 << 20

// gzipBlock is pgzip's block size, fixed for the same reason.
const gzipBlock = 1 << 20

// xzDict maps xz levels to dictionary sizes, as xz's presets do.
var xzDict = [10]int{256 << 10, 1 << 20, 2 << 20, 4 << 20, 4 << 20, 8 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20}

// newCompressor returns a writer compressing to w. Close flushes it; it
// does not close w.
func newCompressor(w io.Writer, c Compression, level, threads int) (io.WriteCloser, error) {
	switch c {
	case Zstd:
		return newZstdWriter(w, level, threads)
	case Gzip:
		zw, err := pgzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, err
		}
		if err := zw.SetConcurrency(gzipBlock, max(2, threads)); err != nil {
			return nil, err
		}
		return zw, nil
	case XZ:
		cfg := xz.WriterConfig{DictCap: xzDict[level], CheckSum: xz.CRC64}
		return cfg.NewWriter(w)
	case None:
		return nopCloser{w}, nil
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// zstdWriter cuts its input into zstdFrame-sized frames and compresses
// them concurrently with one shared encoder.
type zstdWriter struct {
	w       io.Writer
	enc     *zstd.Encoder
	buf     []byte
	free    chan []byte // input buffers
	outFree chan []byte // output buffers
	pending chan chan []byte
	done    chan struct{}
	sem     chan struct{}
	mu      sync.Mutex
	err     error
}

func newZstdWriter(w io.Writer, level, threads int) (*zstdWriter, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(threads), zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, err
	}
	z := &zstdWriter{
		w: w, enc: enc,
		pending: make(chan chan []byte, threads),
		done:    make(chan struct{}),
		sem:     make(chan struct{}, threads),
	}
	z.free = make(chan []byte, threads+1)
	z.outFree = make(chan []byte, threads+1)
	z.buf = z.getBuf()
	go z.writeLoop()
	return z, nil
}

func (z *zstdWriter) writeLoop() {
	defer close(z.done)
	for ch := range z.pending {
		out := <-ch
		if z.getErr() == nil {
			if _, err := z.w.Write(out); err != nil {
				z.setErr(err)
			}
		}
		select {
		case z.outFree <- out[:0]:
		default:
		}
	}
}

func (z *zstdWriter) getErr() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

func (z *zstdWriter) setErr(err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.err == nil {
		z.err = err
	}
}

func (z *zstdWriter) Write(p []byte) (int, error) {
	if err := z.getErr(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		k := min(zstdFrame-len(z.buf), len(p))
		z.buf = append(z.buf, p[:k]...)
		p = p[k:]
		if len(z.buf) == zstdFrame {
			z.submit()
		}
	}
	return n, nil
}

func (z *zstdWriter) submit() {
	in := z.buf
	z.buf = z.getBuf()
	ch := make(chan []byte, 1)
	z.sem <- struct{}{}
	z.pending <- ch
	go func() {
		defer func() { <-z.sem }()
		var out []byte
		select {
		case out = <-z.outFree:
		default:
			// Room for an incompressible frame: growing it costs more.
			out = make([]byte, 0, zstdFrame+zstdFrame/64)
		}
		out = z.enc.EncodeAll(in, out)
		select {
		case z.free <- in[:0]:
		default:
		}
		ch <- out
	}()
}

func (z *zstdWriter) getBuf() []byte {
	select {
	case b := <-z.free:
		return b
	default:
		return make([]byte, 0, zstdFrame)
	}
}

func (z *zstdWriter) Close() error {
	if len(z.buf) > 0 {
		z.submit()
	}
	close(z.pending)
	<-z.done
	z.enc.Close()
	return z.getErr()
}

// Magic numbers of the compressed formats.
var (
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicGzip = []byte{0x1f, 0x8b}
	magicXZ   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// openDecompressor sniffs r's compression from its first bytes. The
// returned close function releases decoder goroutines.
func openDecompressor(r io.Reader, threads int) (io.Reader, Compression, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, "", nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	switch {
	case bytes.HasPrefix(head, magicZstd):
		d, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(max(1, threads)), zstd.WithDecoderMaxWindow(256<<20), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, "", nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return d, Zstd, d.Close, nil
	case bytes.HasPrefix(head, magicGzip):
		d, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return d, Gzip, func() { d.Close() }, nil
	case bytes.HasPrefix(head, magicXZ):
		d, err := xz.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return d, XZ, func() {}, nil
	}
	return br, None, func() {}, nil
}
