package snapshot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"

	"github.com/krgimage/krgimage/internal/compression"
)

// Compression names an archive compression. The names live in
// internal/compression, so that recipes can check them without this writer.
type Compression = compression.Name

// Compressions.
const (
	Zstd = compression.Zstd
	Gzip = compression.Gzip
	XZ   = compression.XZ
	None = compression.None
)

// DefaultLevel is the level each compression uses when Options.Level is 0.
var DefaultLevel = compression.DefaultLevel

// ParseCompression checks a compression name.
func ParseCompression(s string) (Compression, error) { return compression.Parse(s) }

// CompressionForPath picks a compression from a file name's extension,
// zstd when it names none or one krgimage cannot write.
func CompressionForPath(p string) Compression { return compression.ForPath(p) }

// CompressionFromName reads the compression a file name's extension
// names; see compression.FromName.
func CompressionFromName(p string) (c Compression, named bool, err error) {
	return compression.FromName(p)
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
// On a Debian root 8 MiB frames cost 0.8% of ratio against 16 MiB ones
// (4 MiB cost 2.5%), and are still 0.4% smaller than zstd -T0's output. They
// halve the tail of a snapshot, when the last frame is compressed on one
// core while the others wait: 60 ms of a 0.65 s minbase snapshot on 2 cores.
const zstdFrame = 8 << 20

// zstdOut is the room an output buffer gets: enough for an incompressible
// frame, as growing it would cost more.
const zstdOut = zstdFrame + zstdFrame/64

// zstdHeld bounds the frames a deferred zstdWriter keeps in memory while
// its head is not known yet: 16 frames of 8 MiB, typically 50 MiB once
// compressed. Past that the data pass waits for the manifest. On a
// minbase root, 25 frames, it never does: when the manifest is ready, 6
// to 9 are waiting.
const zstdHeld = 16

// gzipBlock is pgzip's block size, fixed for the same reason.
const gzipBlock = 1 << 20

// xzDict maps xz levels to dictionary sizes, as xz's presets do.
var xzDict = [10]int{256 << 10, 1 << 20, 2 << 20, 4 << 20, 4 << 20, 8 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20}

// newCompressor returns a writer compressing to w. Close flushes it; it
// does not close w.
func newCompressor(w io.Writer, c Compression, level, threads int) (io.WriteCloser, error) {
	switch c {
	case Zstd:
		return newZstdWriter(w, level, threads, false)
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
//
// A deferred zstdWriter writes nothing until writeHead gives it the bytes
// that go before everything written so far, in frames of their own: the
// snapshot's data is compressed while its manifest, which comes first, is
// still being made.
type zstdWriter struct {
	w       io.Writer
	enc     *zstd.Encoder
	buf     []byte
	free    chan []byte // input buffers
	outFree chan []byte // output buffers
	pending chan chan []byte
	done    chan struct{}
	sem     chan struct{}
	// head carries the compressed head frames of a deferred writer; quit
	// is closed by fail, and a writer that failed writes nothing more.
	head     chan [][]byte
	headDone atomic.Bool
	quit     chan struct{}
	quitOnce sync.Once
	mu       sync.Mutex
	err      error
}

func newZstdWriter(w io.Writer, level, threads int, deferred bool) (*zstdWriter, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(threads), zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, err
	}
	depth := threads
	if deferred {
		depth = max(threads, zstdHeld)
	}
	z := &zstdWriter{
		w: w, enc: enc,
		pending: make(chan chan []byte, depth),
		done:    make(chan struct{}),
		sem:     make(chan struct{}, threads),
		quit:    make(chan struct{}),
	}
	if deferred {
		z.head = make(chan [][]byte, 1)
	} else {
		z.headDone.Store(true)
	}
	z.free = make(chan []byte, threads+1)
	z.outFree = make(chan []byte, threads+1)
	z.buf = z.getBuf()
	go z.writeLoop()
	return z, nil
}

func (z *zstdWriter) writeLoop() {
	defer close(z.done)
	if z.head != nil {
		select {
		case frames := <-z.head:
			for _, f := range frames {
				z.write(f)
			}
		case <-z.quit:
		}
	}
	for ch := range z.pending {
		out := <-ch
		z.write(out)
		if cap(out) < zstdOut {
			continue // a held frame's copy
		}
		select {
		case z.outFree <- out[:0]:
		default:
		}
	}
}

func (z *zstdWriter) write(p []byte) {
	if z.getErr() == nil {
		if _, err := z.w.Write(p); err != nil {
			z.fail(err)
		}
	}
}

// writeHead compresses p into frames of its own and lets a deferred
// writer write them, then everything written to it so far.
func (z *zstdWriter) writeHead(p []byte) {
	var frames [][]byte
	for len(p) > 0 {
		k := min(len(p), zstdFrame)
		frames = append(frames, z.enc.EncodeAll(p[:k], nil))
		p = p[k:]
	}
	z.headDone.Store(true)
	z.head <- frames
}

// room is how many more frames can be submitted without waiting for the
// head of a deferred writer.
func (z *zstdWriter) room() int {
	if z.headDone.Load() {
		return math.MaxInt
	}
	return cap(z.pending) - len(z.pending)
}

func (z *zstdWriter) getErr() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

// fail records err, unless an error came first, and stops all writing:
// a deferred writer still waiting for its head drops what it holds.
func (z *zstdWriter) fail(err error) {
	z.mu.Lock()
	if z.err == nil {
		z.err = err
	}
	z.mu.Unlock()
	z.quitOnce.Do(func() { close(z.quit) })
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

// ReadFrom reads r to its end straight into the frame buffers, sparing
// the copy Write makes.
func (z *zstdWriter) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if err := z.getErr(); err != nil {
			return total, err
		}
		if len(z.buf) == zstdFrame {
			z.submit()
		}
		n, err := r.Read(z.buf[len(z.buf):zstdFrame])
		z.buf = z.buf[:len(z.buf)+n]
		total += int64(n)
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (z *zstdWriter) submit() {
	in := z.buf
	ch := make(chan []byte, 1)
	// Waiting for a compression to finish before taking the next input
	// buffer lets it be the one that compression frees.
	z.sem <- struct{}{}
	z.pending <- ch
	z.buf = z.getBuf()
	go func() {
		defer func() { <-z.sem }()
		var out []byte
		select {
		case out = <-z.outFree:
		default:
			out = make([]byte, 0, zstdOut)
		}
		out = z.enc.EncodeAll(in, out)
		if !z.headDone.Load() {
			// Held until the head comes: keep only the bytes, and the
			// buffer for the next frame.
			held := bytes.Clone(out)
			select {
			case z.outFree <- out[:0]:
			default:
			}
			out = held
		}
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

// Close compresses what is buffered and waits until everything is
// written; a deferred writer must have been given its head, or failed.
func (z *zstdWriter) Close() error {
	if len(z.buf) > 0 && z.getErr() == nil {
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
		d, err := newFrameReader(br, threads)
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
