package debarchive

import (
	"bufio"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

// ParsePackagesFile decompresses and parses the Packages index at path,
// which came from the Release's index name: the name, not the path (a
// download cache names files by checksum), says how it is compressed.
// The decompressor runs in its own goroutine so that decoding and parsing
// share the machine's cores.
func ParsePackagesFile(path, name, comp string) ([]*Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec, err := decompressor(f, name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	r := readAhead(dec, 1<<20, 4)
	pkgs, err := ParsePackages(r, comp)
	r.Close()
	return pkgs, err
}

// aheadReader reads its source in a goroutine of its own, up to n
// buffers ahead of its reader. io.Pipe hands over each write before the
// writer may go on, which kept the decompressor and the parser taking
// turns instead of sharing the cores.
type aheadReader struct {
	full chan []byte
	free chan []byte
	quit chan struct{}
	cur  []byte
	buf  []byte
	err  error
	errc chan error
}

func readAhead(src io.Reader, size, n int) *aheadReader {
	a := &aheadReader{full: make(chan []byte, n), free: make(chan []byte, n+1), quit: make(chan struct{}), errc: make(chan error, 1)}
	for range n + 1 {
		a.free <- make([]byte, size)
	}
	go func() {
		defer close(a.full)
		for {
			var b []byte
			select {
			case b = <-a.free:
			case <-a.quit:
				return
			}
			k, err := io.ReadFull(src, b)
			if k > 0 {
				a.full <- b[:k]
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return
			}
			if err != nil {
				a.errc <- err
				return
			}
		}
	}()
	return a
}

func (a *aheadReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.buf != nil {
			a.free <- a.buf[:cap(a.buf)]
			a.buf = nil
		}
		if a.err != nil {
			return 0, a.err
		}
		b, ok := <-a.full
		if !ok {
			select {
			case a.err = <-a.errc:
			default:
				a.err = io.EOF
			}
			continue
		}
		a.buf, a.cur = b, b
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// Close stops the reading goroutine when the reader gave up early.
func (a *aheadReader) Close() {
	close(a.quit)
	for range a.full {
	}
}

func decompressor(r io.Reader, name string) (io.Reader, error) {
	// The xz reader reads its input a byte at a time: unbuffered, a
	// Packages.xz took 7 s of read calls instead of 0.5 s.
	r = bufio.NewReaderSize(r, 256<<10)
	switch {
	case strings.HasSuffix(name, ".gz"):
		return gzip.NewReader(r)
	case strings.HasSuffix(name, ".xz"):
		return xz.NewReader(r)
	case strings.HasSuffix(name, ".bz2"):
		return bzip2.NewReader(r), nil
	}
	return r, nil
}
