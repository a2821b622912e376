package snapshot

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExtractorConfined is the second lock alone: symlinks planted under
// the reader's nose, which it would have refused to write through, are
// not followed either by the extractor, with openat2 or without, for an
// entry's directory or for a hardlink's target.
func TestExtractorConfined(t *testing.T) {
	for _, noOpenat2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("noOpenat2=%v", noOpenat2), func(t *testing.T) {
			base := t.TempDir()
			before := plantCanaries(t, base)
			root := filepath.Join(base, "root")
			must(t, os.Mkdir(root, 0o755))
			x, err := newExtractor(root, slog.New(slog.DiscardHandler), 1, noOpenat2)
			must(t, err)
			defer x.close()
			if !noOpenat2 && !x.openat2 {
				t.Fatal("this kernel has openat2, the extractor does not use it")
			}
			// Resolved in the root, slash/d, up/d and in/sub would be d
			// and d/sub: still refused, as the reader refuses them.
			must(t, os.MkdirAll(filepath.Join(root, "d", "sub"), 0o755))
			for name, target := range map[string]string{"slash": "/", "up": strings.Repeat("../", 20), "in": "d", "out": "../outside"} {
				must(t, os.Symlink(target, filepath.Join(root, name)))
			}
			for _, dir := range []string{"slash/tmp", "slash/d", "up/tmp", "up/d", "in", "in/sub", "in/sub/x", "out", "out/sub", "d/../out/sub", "..", "../outside", "d/../../outside", "/tmp"} {
				if _, err := x.dirFD(dir, -1); !errors.Is(err, ErrUnsafePath) {
					t.Errorf("dirFD(%s) = %v, want ErrUnsafePath", dir, err)
				}
			}
			for _, m := range []*member{
				{rel: "slash/tmp/krgimage-hostile-canary", entry: &Entry{Type: TypeFifo, Mode: 0o644}, hdr: &tarHeader{}},
				{rel: "out/sub/fifo", entry: &Entry{Type: TypeFifo, Mode: 0o644}, hdr: &tarHeader{}},
				{rel: "d/h", entry: &Entry{Type: TypeHardlink, Link: "out/file"}, hdr: &tarHeader{}},
				{rel: "d/h2", entry: &Entry{Type: TypeHardlink, Link: "up/tmp/krgimage-hostile-canary"}, hdr: &tarHeader{}},
				{rel: "d/h3", entry: &Entry{Type: TypeHardlink, Link: "../canary"}, hdr: &tarHeader{}},
				{rel: "../fifo", entry: &Entry{Type: TypeFifo, Mode: 0o644}, hdr: &tarHeader{}},
				{rel: "d/../../outside/fifo", entry: &Entry{Type: TypeFifo, Mode: 0o644}, hdr: &tarHeader{}},
			} {
				if err := x.extract(m); !errors.Is(err, ErrUnsafePath) {
					t.Errorf("extract(%s) = %v, want ErrUnsafePath", m.rel, err)
				}
			}
			// What is created next to the symlinks stays where it is named.
			m := &member{rel: "d/fifo", entry: &Entry{Type: TypeFifo, Mode: 0o600}, hdr: &tarHeader{}}
			must(t, x.extract(m))
			must(t, x.finish(false))
			if fi, err := os.Lstat(filepath.Join(root, "d", "fifo")); err != nil || fi.Mode().Type() != os.ModeNamedPipe {
				t.Errorf("d/fifo: %v %v", fi, err)
			}
			checkCanaries(t, base, before, true)
		})
	}
}

// TestRestoreManyDirsHardlink: a hardlink whose target's directory was
// evicted from the descriptor cache, while its own is the oldest left,
// restores: opening the one does not close the other.
func TestRestoreManyDirsHardlink(t *testing.T) {
	entries := []hostileEntry{{name: "./", typ: typeDir}, {name: "a/", typ: typeDir}, {name: "a/f", typ: typeReg, data: "shared"}}
	for i := range maxOpenDirs {
		entries = append(entries, hostileEntry{name: fmt.Sprintf("b%03d/f", i), typ: typeReg, data: "x"})
	}
	entries = append(entries, hostileEntry{name: "b000/h", typ: typeLink, link: "a/f"})
	data := hostileTar(t, entries...)
	for _, noOpenat2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("noOpenat2=%v", noOpenat2), func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			archive := root + ".tar"
			must(t, os.WriteFile(archive, data, 0o644))
			if _, err := Restore(t.Context(), archive, root, RestoreOptions{NoSync: true, Threads: 1, noOpenat2: noOpenat2}); err != nil {
				t.Fatal(err)
			}
			checkRestoredTree(t, data, root)
		})
	}
}
