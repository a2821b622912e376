package snapshot

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// framesOf compresses data the way snapshots are written: zstdFrame-sized
// frames that say their size.
func framesOf(t testing.TB, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	z, err := newZstdWriter(&out, 3, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	z.Write(data)
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// streamOf compresses data as one frame that does not say its size, as
// `tar | zstd -T0` does.
func streamOf(t testing.TB, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func skippable(payload string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0x184d2a5e)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// testData is n bytes of compressible, not trivially repetitive, data.
func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	words := []string{"usr/", "lib/", "x86_64-linux-gnu", ".so.6", "\x00\x00\x00\x00", "debian", "kernel", "\n"}
	var b bytes.Buffer
	for b.Len() < n {
		if r.IntN(8) == 0 {
			b.WriteByte(byte(r.Uint32()))
		} else {
			b.WriteString(words[r.IntN(len(words))])
		}
	}
	return b.Bytes()[:n]
}

func readFrames(t testing.TB, compressed []byte, threads int) ([]byte, error) {
	t.Helper()
	f, err := newFrameReader(bufio.NewReader(bytes.NewReader(compressed)), threads)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

// bigWindow is a frame of 300 raw bytes that asks for a 128 MiB window.
var bigWindow = append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x40, 0x88, 0x2c, 0x00, 0x61, 0x09, 0x00}, bytes.Repeat([]byte("a"), 300)...)

// TestFrameReader decodes what the stream decoder does, frames in
// parallel where they say their size and as a stream from the first one
// that does not.
func TestFrameReader(t *testing.T) {
	big := testData(3*zstdFrame+12345, 1)
	small := testData(70000, 2)
	for _, tt := range []struct {
		name       string
		compressed []byte
		want       []byte
	}{
		{"krgimage's frames", framesOf(t, big), big},
		{"one frame", framesOf(t, small), small},
		{"empty", framesOf(t, nil), nil},
		{"a stream without sizes", streamOf(t, big), big},
		{"frames, then a stream", append(framesOf(t, big), streamOf(t, small)...), append(append([]byte{}, big...), small...)},
		{"a window larger than the parallel decoder's", bigWindow, bytes.Repeat([]byte("a"), 300)},
		{"skippable frames between", bytes.Join([][]byte{skippable("krgimage"), framesOf(t, small), skippable(""), framesOf(t, small)}, nil), append(append([]byte{}, small...), small...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, threads := range []int{1, 2, 4} {
				got, err := readFrames(t, tt.compressed, threads)
				if err != nil {
					t.Fatalf("threads=%d: %v", threads, err)
				}
				if !bytes.Equal(got, tt.want) {
					t.Fatalf("threads=%d: decoded %d bytes, want %d, or they differ", threads, len(got), len(tt.want))
				}
			}
		})
	}
}

// TestFrameReaderDamage: a truncated or damaged stream is ErrCorrupt,
// never a short success.
func TestFrameReaderDamage(t *testing.T) {
	data := testData(2*zstdFrame+999, 3)
	good := framesOf(t, data)
	cuts := []int{1, 3, 4, 5, 9, 100, len(good) / 2, len(good) - 5, len(good) - 1}
	for _, n := range cuts {
		if _, err := readFrames(t, good[:n], 2); !errors.Is(err, ErrCorrupt) {
			t.Errorf("cut at %d of %d: %v, want ErrCorrupt", n, len(good), err)
		}
	}
	for _, at := range []int{4, 20, len(good) / 3, len(good) - 2} {
		bad := bytes.Clone(good)
		bad[at] ^= 0x55
		if got, err := readFrames(t, bad, 2); err == nil && !bytes.Equal(got, data) {
			t.Errorf("byte %d flipped: no error, and wrong data", at)
		} else if err == nil {
			t.Errorf("byte %d flipped: no error", at)
		} else if !errors.Is(err, ErrCorrupt) {
			t.Errorf("byte %d flipped: %v, want ErrCorrupt", at, err)
		}
	}
	if _, err := readFrames(t, append(bytes.Clone(good), "trailing"...), 2); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing garbage: %v, want ErrCorrupt", err)
	}
}

// failingReader returns its bytes, then err.
type failingReader struct {
	b   []byte
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, r.err
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// TestFrameReaderIOError: a read error is reported as itself, not as a
// corrupt archive.
func TestFrameReaderIOError(t *testing.T) {
	good := framesOf(t, testData(zstdFrame+10, 6))
	f, err := newFrameReader(bufio.NewReader(&failingReader{good[:len(good)/2], syscall.EIO}), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = io.ReadAll(f)
	if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrCorrupt) {
		t.Errorf("got %v, want EIO and not ErrCorrupt", err)
	}
}

// TestFrameReaderStopsEarly: closing before the end releases everything
// (the race detector and the test's own exit would show what leaks).
func TestFrameReaderStopsEarly(t *testing.T) {
	f, err := newFrameReader(bufio.NewReader(bytes.NewReader(framesOf(t, testData(5*zstdFrame, 4)))), 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(f, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f.Close()
	if _, err := f.Read(make([]byte, 10)); !errors.Is(err, errClosed) {
		t.Errorf("read after Close: %v", err)
	}
}

// FuzzZstdFrames: the frame reader never accepts what the stream decoder
// rejects, and agrees with it byte for byte on what both accept.
func FuzzZstdFrames(f *testing.F) {
	small := testData(3000, 5)
	f.Add(framesOf(f, small))
	f.Add(streamOf(f, small))
	f.Add(bytes.Join([][]byte{skippable("x"), framesOf(f, small[:100]), streamOf(f, small[:50])}, nil))
	f.Add(framesOf(f, nil))
	f.Add(bigWindow)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readFrames(t, data, 2)
		d, derr := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(256<<20), zstd.WithDecoderLowmem(true))
		if derr != nil {
			t.Fatal(derr)
		}
		defer d.Close()
		want, werr := io.ReadAll(d)
		if err == nil && werr != nil {
			t.Fatalf("the frame reader accepted what the stream decoder rejects (%v)", werr)
		}
		if err != nil && werr == nil {
			t.Fatalf("the frame reader rejected what the stream decoder accepts: %v", err)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("decoded %q, the stream decoder %q", got, want)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
	})
}
