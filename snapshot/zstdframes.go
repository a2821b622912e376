package snapshot

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// maxParallelFrame is the largest frame content (and window) decoded
// whole, in parallel with others: krgimage's frames are zstdFrame bytes,
// 16 MiB in archives written before 2026-11-26. A frame that is larger or
// does not say its size (zstd -T0's single frame) is decoded as a stream,
// as is everything after it.
const maxParallelFrame = 16 << 20

// maxFrameThreads bounds the frames decoded at once, and so the memory a
// hostile archive of small frames claiming large contents can make the
// reader hold: past two or three, extraction is the bottleneck anyway.
const maxFrameThreads = 4

// zstdBlockMax is the largest block the format allows.
const zstdBlockMax = 128 << 10

// frameReader decodes a stream of zstd frames, several at once: one
// stream decoder keeps a single core busy, and restoring is otherwise
// waiting for it. Output is in stream order.
type frameReader struct {
	src     *bufio.Reader
	dec     *zstd.Decoder
	threads int
	// pending carries each frame's result in stream order.
	pending chan chan frameResult
	free    chan []byte
	quit    chan struct{}
	done    chan struct{}
	stop    sync.Once

	cur []byte
	buf []byte
	// sdec decodes the rest of the stream once a frame cannot be decoded
	// whole.
	sdec *zstd.Decoder
	err  error
}

type frameResult struct {
	data []byte
	err  error
	// rest, when set, is the stream from a frame on that cannot be
	// decoded whole.
	rest io.Reader
}

func newFrameReader(src *bufio.Reader, threads int) (*frameReader, error) {
	threads = min(max(1, threads), maxFrameThreads)
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(threads), zstd.WithDecoderMaxMemory(maxParallelFrame), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, err
	}
	f := &frameReader{
		src: src, dec: dec, threads: threads,
		pending: make(chan chan frameResult, threads),
		free:    make(chan []byte, threads+2),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go f.split()
	return f, nil
}

// split reads the frames and starts decoding each; it stops at the end,
// at an error, or at the first frame for the stream decoder.
func (f *frameReader) split() {
	defer close(f.done)
	defer close(f.pending)
	for {
		select {
		case <-f.quit:
			return
		default:
		}
		frame, size, err := nextFrame(f.src)
		if err == io.EOF {
			return
		}
		ch := make(chan frameResult, 1)
		select {
		case f.pending <- ch:
		case <-f.quit:
			return
		}
		switch {
		case err != nil:
			ch <- frameResult{err: err}
			return
		case size < 0:
			// The frame's bytes so far, then the rest of the source.
			ch <- frameResult{rest: io.MultiReader(bytes.NewReader(frame), f.src)}
			return
		case frame == nil:
			ch <- frameResult{} // a skippable frame
			continue
		}
		go func() {
			out, err := f.dec.DecodeAll(frame, f.getBuf(size))
			if err == nil && len(out) != size {
				err = fmt.Errorf("zstd frame holds %d bytes, its header says %d", len(out), size)
			}
			if err != nil {
				err = fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			ch <- frameResult{data: out, err: err}
		}()
	}
}

func (f *frameReader) getBuf(size int) []byte {
	select {
	case b := <-f.free:
		if cap(b) >= size {
			return b[:0]
		}
	default:
	}
	return make([]byte, 0, size)
}

func (f *frameReader) Read(p []byte) (int, error) {
	for len(f.cur) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		if f.sdec != nil {
			n, err := f.sdec.Read(p)
			if err != nil && err != io.EOF {
				f.err = fmt.Errorf("%w: %w", ErrCorrupt, err)
				err = f.err
			}
			return n, err
		}
		if f.buf != nil {
			select {
			case f.free <- f.buf:
			default:
			}
			f.buf = nil
		}
		ch, ok := <-f.pending
		if !ok {
			f.err = io.EOF
			continue
		}
		r := <-ch
		switch {
		case r.err != nil:
			f.err = r.err
		case r.rest != nil:
			d, err := zstd.NewReader(r.rest, zstd.WithDecoderConcurrency(f.threads), zstd.WithDecoderMaxWindow(256<<20), zstd.WithDecoderLowmem(true))
			if err != nil {
				f.err = fmt.Errorf("%w: %w", ErrCorrupt, err)
				continue
			}
			f.sdec = d
		default:
			f.cur, f.buf = r.data, r.data
		}
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// Close stops the splitter and the decoders. The frames being decoded
// finish in the background, and the parallel decoder is closed after
// them.
func (f *frameReader) Close() {
	f.stop.Do(func() {
		close(f.quit)
		f.cur, f.err = nil, errClosed
		if f.sdec != nil {
			f.sdec.Close()
		}
		go func() {
			for ch := range f.pending {
				<-ch
			}
			<-f.done
			f.dec.Close()
		}()
	})
}

var (
	errFrame  = fmt.Errorf("%w: malformed zstd frame", ErrCorrupt)
	errClosed = errors.New("read from a closed zstd frame reader")
)

// short says why a read of a frame's bytes fell short: the stream ended
// (a truncated archive), or reading failed.
func short(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: truncated", errFrame)
	}
	return err
}

// nextFrame reads one frame whole and returns it with its content size,
// or, when the frame does not say its size or is larger than
// maxParallelFrame, the bytes read so far and size -1. A skippable frame
// is read and returned as nil. io.EOF means the stream ended between
// frames.
func nextFrame(r *bufio.Reader) (frame []byte, size int, err error) {
	head, err := r.Peek(4)
	if len(head) == 0 && err == io.EOF {
		return nil, 0, io.EOF
	}
	if err != nil {
		return nil, 0, short(err)
	}
	magic := binary.LittleEndian.Uint32(head)
	if magic&0xfffffff0 == 0x184d2a50 {
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil, 0, short(err)
		}
		n := int64(binary.LittleEndian.Uint32(h[4:]))
		if k, err := io.CopyN(io.Discard, r, n); k != n {
			return nil, 0, short(cmp.Or(err, io.EOF))
		}
		return nil, 0, nil
	}
	if !bytes.Equal(head, magicZstd) {
		return nil, 0, fmt.Errorf("%w: bad magic %x", errFrame, head)
	}
	var buf bytes.Buffer
	take := func(n int) ([]byte, error) {
		start := buf.Len()
		if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
			return nil, short(err)
		}
		return buf.Bytes()[start:], nil
	}
	hd, err := take(5)
	if err != nil {
		return nil, 0, err
	}
	desc := hd[4]
	fcsFlag, single, checksum, dictFlag := desc>>6, desc&0x20 != 0, desc&0x04 != 0, desc&0x03
	if desc&0x08 != 0 {
		return nil, 0, fmt.Errorf("%w: reserved header bit set", errFrame)
	}
	if !single {
		wd, err := take(1)
		if err != nil {
			return nil, 0, err
		}
		// The decoder's memory is bounded by maxParallelFrame: a larger
		// window is the stream decoder's to judge.
		exp, mantissa := wd[0]>>3, uint64(wd[0]&7)
		base := uint64(1) << (10 + exp)
		if base+base/8*mantissa > maxParallelFrame {
			return buf.Bytes(), -1, nil
		}
	}
	if _, err := take([4]int{0, 1, 2, 4}[dictFlag]); err != nil {
		return nil, 0, err
	}
	fcsLen := [4]int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && single {
		fcsLen = 1
	}
	if fcsLen == 0 || dictFlag != 0 {
		return buf.Bytes(), -1, nil
	}
	fb, err := take(fcsLen)
	if err != nil {
		return nil, 0, err
	}
	var fcs uint64
	switch fcsLen {
	case 1:
		fcs = uint64(fb[0])
	case 2:
		fcs = uint64(binary.LittleEndian.Uint16(fb)) + 256
	case 4:
		fcs = uint64(binary.LittleEndian.Uint32(fb))
	case 8:
		fcs = binary.LittleEndian.Uint64(fb)
	}
	if fcs > maxParallelFrame {
		return buf.Bytes(), -1, nil
	}
	buf.Grow(min(int(fcs)/2, 1<<20))
	// A frame is at most its content stored raw, plus block headers.
	limit := buf.Len() + int(fcs) + (int(fcs)/zstdBlockMax+2)*3 + 4
	for {
		bh, err := take(3)
		if err != nil {
			return nil, 0, err
		}
		h := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
		last, typ, bsize := h&1 != 0, (h>>1)&3, int(h>>3)
		switch typ {
		case 1: // RLE: one byte repeated bsize times
			bsize = 1
		case 3:
			return nil, 0, fmt.Errorf("%w: reserved block type", errFrame)
		}
		if bsize > zstdBlockMax {
			return nil, 0, fmt.Errorf("%w: block of %d bytes", errFrame, bsize)
		}
		if buf.Len()+bsize > limit {
			// Larger than any encoder makes it: let the stream decoder judge.
			return buf.Bytes(), -1, nil
		}
		if _, err := take(bsize); err != nil {
			return nil, 0, err
		}
		if last {
			break
		}
	}
	if checksum {
		if _, err := take(4); err != nil {
			return nil, 0, err
		}
	}
	return buf.Bytes(), int(fcs), nil
}
