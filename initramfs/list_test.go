package initramfs

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestListEveryCompression(t *testing.T) {
	raw := written(t, sample(t), buildTime)
	for _, algo := range Compressions {
		t.Run(algo, func(t *testing.T) {
			var b bytes.Buffer
			c, _ := compressor(&b, algo)
			c.Write(raw)
			c.Close()
			entries, got, err := List(&b)
			if err != nil {
				t.Fatal(err)
			}
			if got != algo {
				t.Errorf("compression %q, want %q", got, algo)
			}
			var lines []string
			for _, e := range entries {
				lines = append(lines, e.Format())
			}
			out := strings.Join(lines, "\n")
			for _, want := range []string{
				"lrwxrwxrwx   1 0        0               7 2023-11-14 22:13 bin/sh -> busybox",
				"-rwsr-xr-x   3 0        0              11 2023-11-14 22:13 usr/bin/tool",
				"drwxrwxrwt   2 0        0               0 2023-11-14 22:13 tmp",
				"-rw-r--r--   1 0        0               3 2001-01-01 00:00 usr/lib/old",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("listing lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// initramfs-tools writes an uncompressed early archive (CPU microcode)
// followed by the compressed main one.
func TestListConcatenated(t *testing.T) {
	early := NewArchive()
	early.File("kernel/x86/microcode/GenuineIntel.bin", []byte("ucode"), 0o644, buildTime)
	var b bytes.Buffer
	early.WriteTo(&b, buildTime)
	b.Write(make([]byte, 512-b.Len()%512))
	c, _ := compressor(&b, "zstd")
	sample(t).WriteTo(c, buildTime)
	c.Close()
	entries, algo, err := List(&b)
	if err != nil {
		t.Fatal(err)
	}
	if algo != "zstd" || entries[0].Segment != 0 || entries[len(entries)-1].Segment != 1 {
		t.Errorf("algo %s, segments %d..%d", algo, entries[0].Segment, entries[len(entries)-1].Segment)
	}
}

func TestListRefusesGarbage(t *testing.T) {
	raw := written(t, sample(t), buildTime)
	for name, data := range map[string][]byte{
		"empty":     nil,
		"text":      []byte("hello world, not an initramfs"),
		"truncated": raw[:len(raw)/2],
		"bad hex":   append([]byte("070701zzzzzzzz"), raw[14:]...),
		"huge name": append([]byte("070701"+strings.Repeat("0", 8*11)+"FFFFFFFF"), raw[102:]...),
	} {
		if _, _, err := List(bytes.NewReader(data)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: List() = %v, want ErrFormat", name, err)
		}
	}
}

func FuzzList(f *testing.F) {
	raw := func() []byte {
		a := NewArchive()
		a.File("init", []byte("#!/bin/sh\n"), 0o755, buildTime)
		a.Symlink("bin/sh", "busybox")
		var b bytes.Buffer
		a.WriteTo(&b, buildTime)
		return b.Bytes()
	}()
	f.Add(raw)
	for _, algo := range []string{"gzip", "xz", "zstd", "lzma"} {
		var b bytes.Buffer
		c, _ := compressor(&b, algo)
		c.Write(raw)
		c.Close()
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _, err := List(bytes.NewReader(data))
		if err != nil && !errors.Is(err, ErrFormat) {
			t.Fatalf("List() error not classified: %v", err)
		}
		for _, e := range entries {
			_ = e.Format()
		}
	})
}
