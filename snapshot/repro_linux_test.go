package snapshot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func snapshotSum(t *testing.T, root string, o Options) string {
	t.Helper()
	res, err := Write(t.Context(), root, &bytes.Buffer{}, o)
	if err != nil {
		t.Fatal(err)
	}
	return res.SHA256
}

func TestReproducible(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	buildTorture(t, src)
	for _, c := range []Compression{Zstd, Gzip, XZ, None} {
		t.Run(string(c), func(t *testing.T) {
			a := snapshotSum(t, src, Options{Compression: c, Threads: 1})
			b := snapshotSum(t, src, Options{Compression: c, Threads: 8})
			if a != b {
				t.Errorf("1 thread gives %s, 8 give %s", a, b)
			}
			if l := snapshotSum(t, src, Options{Compression: c, Level: levelRange[c][1]}); l == a && c != None {
				t.Errorf("level %d gives the same bytes as the default", levelRange[c][1])
			}
		})
	}
	t.Run("many-frames", func(t *testing.T) {
		// Over two zstd frames and many pgzip blocks, compressed
		// concurrently: the order they land in must not depend on timing.
		big := filepath.Join(dir, "big")
		must(t, os.Mkdir(big, 0o755))
		b := make([]byte, 40<<20)
		for i := range b {
			b[i] = byte(i*7/13) ^ byte(i>>12)
		}
		must(t, os.WriteFile(filepath.Join(big, "data"), b, 0o644))
		for _, c := range []Compression{Zstd, Gzip} {
			one := snapshotSum(t, big, Options{Compression: c, Threads: 1})
			for _, n := range []int{2, 3, 8} {
				if got := snapshotSum(t, big, Options{Compression: c, Threads: n}); got != one {
					t.Errorf("%s: %d threads give %s, 1 gives %s", c, n, got, one)
				}
			}
		}
	})
	t.Run("mtime-change", func(t *testing.T) {
		before := snapshotSum(t, src, Options{})
		p := filepath.Join(src, "etc/passwd")
		fi, _ := os.Stat(p)
		must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime().Add(time.Nanosecond)))
		if after := snapshotSum(t, src, Options{}); after == before {
			t.Error("touching a file did not change the archive")
		}
	})
	t.Run("source-date-epoch", func(t *testing.T) {
		epoch := time.Date(2023, 5, 1, 12, 0, 30, 0, time.UTC) // some entries are newer
		p := filepath.Join(src, "etc/passwd")
		newer := epoch.Add(time.Hour)
		must(t, os.Chtimes(p, newer, newer))
		before := snapshotSum(t, src, Options{SourceDateEpoch: &epoch})
		// Another mtime newer than the epoch: the same archive.
		future := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		must(t, os.Chtimes(p, future, future))
		if after := snapshotSum(t, src, Options{SourceDateEpoch: &epoch}); after != before {
			t.Error("a change to an mtime newer than SOURCE_DATE_EPOCH changed the archive")
		}
		var buf bytes.Buffer
		if _, err := Write(t.Context(), src, &buf, Options{Compression: None, SourceDateEpoch: &epoch}); err != nil {
			t.Fatal(err)
		}
		m, err := ReadManifestFrom(t.Context(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		clamped, kept := 0, 0
		for _, e := range m.Entries {
			switch {
			case e.ModTime.After(epoch):
				t.Errorf("%s: mtime %v after the epoch", e.Path, e.ModTime)
			case e.ModTime.Equal(epoch):
				clamped++
			default:
				kept++
			}
		}
		if clamped == 0 || kept == 0 {
			t.Errorf("%d mtimes clamped, %d kept: the epoch should split the tree", clamped, kept)
		}
	})
}
