package debarchive

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestReadAhead(t *testing.T) {
	data := bytes.Repeat([]byte("Package: x\nVersion: 1\n\n"), 5000)
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		src  io.Reader
		want []byte
		err  error
	}{
		{"whole", bytes.NewReader(data), data, nil},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(data[:3000])), data[:3000], nil},
		{"empty", bytes.NewReader(nil), nil, nil},
		{"error after data", io.MultiReader(bytes.NewReader(data[:5000]), iotest.ErrReader(boom)), nil, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := readAhead(tc.src, 4096, 2)
			got, err := io.ReadAll(r)
			r.Close()
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.err == nil && !bytes.Equal(got, tc.want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(tc.want))
			}
			if tc.err != nil && !bytes.HasPrefix(data, got) {
				t.Fatal("data before the error differs")
			}
		})
	}
	// A reader that stops early must not leave the goroutine blocked.
	r := readAhead(bytes.NewReader(data), 1024, 2)
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	r.Close()
}
