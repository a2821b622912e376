package snapshot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// TestZstdSameTar checks that the zstd snapshot, whose data is archived
// while the files are still being hashed, holds the very tar stream the
// sequential path writes, whatever the threads, and the same manifest.
func TestZstdSameTar(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	buildTorture(t, src)
	// Files around the size up to which the data pass hashes what it
	// reads, and one over a frame, which the workers hash.
	for name, size := range map[string]int{"frame-1": zstdFrame - 1, "frame": zstdFrame, "frame+4097": zstdFrame + 4097} {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i*31/7) ^ byte(i>>10)
		}
		must(t, os.WriteFile(filepath.Join(src, name), b, 0o644))
	}
	var plain bytes.Buffer
	if _, err := Write(t.Context(), src, &plain, Options{Compression: None}); err != nil {
		t.Fatal(err)
	}
	want, err := ReadManifestFrom(t.Context(), bytes.NewReader(plain.Bytes()))
	must(t, err)
	wantText, _ := want.MarshalText()
	for _, threads := range []int{1, 2, 8} {
		var z bytes.Buffer
		if _, err := Write(t.Context(), src, &z, Options{Threads: threads}); err != nil {
			t.Fatal(err)
		}
		d, err := zstd.NewReader(&z)
		must(t, err)
		got, err := io.ReadAll(d)
		d.Close()
		must(t, err)
		if !bytes.Equal(got, plain.Bytes()) {
			t.Fatalf("%d threads: the zstd archive's tar stream (%d bytes) differs from the uncompressed archive (%d bytes)", threads, len(got), plain.Len())
		}
		m, err := ReadManifestFrom(t.Context(), bytes.NewReader(got))
		must(t, err)
		if text, _ := m.MarshalText(); !bytes.Equal(text, wantText) {
			t.Errorf("%d threads: the manifests differ", threads)
		}
	}
}

// TestWriteChangedFile checks that the data pass notices a file that
// changed since the walk saw it, whichever side hashes it.
func TestWriteChangedFile(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f")
	must(t, os.WriteFile(p, []byte("before"), 0o644))
	nodes, err := scan(t.Context(), root, scanOptions{threads: 1})
	must(t, err)
	must(t, os.WriteFile(p, []byte("after, longer"), 0o644))
	for _, share := range []bool{false, true} {
		if err := writeOneEntry(t, t.Context(), root, nodes[1], share); !errors.Is(err, ErrChanged) {
			t.Errorf("share %v: got %v, want ErrChanged", share, err)
		}
	}
}

// writeOneEntry archives n alone, its file hashed by the data pass when
// share is set, as the zstd path does, and returns writeEntry's error.
func writeOneEntry(t *testing.T, ctx context.Context, root string, n *node, share bool) error {
	t.Helper()
	a := &archiver{root: root}
	z, err := newZstdWriter(io.Discard, 3, 1, false)
	must(t, err)
	if share {
		a.share, a.z = newHashShare(), z
	}
	n.claimed.Store(false)
	err = a.writeEntry(ctx, newTarWriter(z), n, nil)
	z.Close()
	return err
}

// TestDeferredZstdWriter checks that a deferred writer holds what it is
// given, at most zstdHeld frames of it, until its head comes, then writes
// the head first; and that failing it releases a writer waiting for room.
func TestDeferredZstdWriter(t *testing.T) {
	data := make([]byte, (zstdHeld+3)*zstdFrame+100)
	for i := range data {
		data[i] = byte(i * 13 / 5)
	}
	// start writes data to a new deferred writer in a goroutine, which
	// reports on wrote.
	start := func(t *testing.T) (z *zstdWriter, out *bytes.Buffer, wrote chan error) {
		out, wrote = &bytes.Buffer{}, make(chan error, 1)
		z, err := newZstdWriter(out, 3, 2, true)
		must(t, err)
		go func() {
			_, err := z.Write(data)
			wrote <- err
		}()
		return z, out, wrote
	}
	t.Run("head", func(t *testing.T) {
		z, out, wrote := start(t)
		select {
		case err := <-wrote:
			t.Fatalf("Write of %d frames returned (%v) before the head came", zstdHeld+3, err)
		case <-time.After(200 * time.Millisecond):
		}
		if out.Len() != 0 {
			t.Fatal("wrote before the head came")
		}
		z.writeHead([]byte("head"))
		must(t, <-wrote)
		must(t, z.Close())
		d, err := zstd.NewReader(out)
		must(t, err)
		defer d.Close()
		got, err := io.ReadAll(d)
		must(t, err)
		if !bytes.Equal(got, append([]byte("head"), data...)) {
			t.Error("the output is not the head, then the data")
		}
	})
	t.Run("fail", func(t *testing.T) {
		z, out, wrote := start(t)
		time.Sleep(50 * time.Millisecond)
		boom := errors.New("boom")
		z.fail(boom)
		<-wrote
		if err := z.Close(); !errors.Is(err, boom) {
			t.Errorf("Close: got %v, want %v", err, boom)
		}
		if out.Len() != 0 {
			t.Errorf("a failed writer wrote %d bytes", out.Len())
		}
	})
}

// TestScanLiveTree: a live scan (verify --against, diff) reports a file
// that changes or vanishes while being read instead of failing; a
// snapshot's scan still fails.
func TestScanLiveTree(t *testing.T) {
	for _, live := range []bool{true, false} {
		root := t.TempDir()
		for _, f := range []string{"grows", "same", "vanishes"} {
			must(t, os.WriteFile(filepath.Join(root, f), []byte(f), 0o644))
		}
		hook := func(n *node) {
			switch n.Path {
			case "grows":
				must(t, os.WriteFile(filepath.Join(root, n.Path), []byte("grows, and grows"), 0o644))
			case "vanishes":
				must(t, os.Remove(filepath.Join(root, n.Path)))
			}
		}
		nodes, err := scan(t.Context(), root, scanOptions{threads: 1, live: live, beforeDigest: hook})
		if !live {
			if !errors.Is(err, ErrChanged) && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("scan of a changing tree = %v", err)
			}
			continue
		}
		must(t, err)
		changing := map[string]bool{}
		for _, n := range nodes {
			changing[n.Path] = n.Changing
			if n.Path == "same" && (n.Changing || n.Digest != sha256hex("same")) {
				t.Errorf("same: changing %v, digest %s", n.Changing, n.Digest)
			}
		}
		if !changing["grows"] || !changing["vanishes"] {
			t.Errorf("changing = %v", changing)
		}
		var old []Entry
		for _, n := range nodes {
			e := n.Entry
			e.Changing = false
			e.DigestKind, e.Digest = keySHA256, sha256hex(n.Path)
			old = append(old, e)
		}
		diffs := compare(old, nodeEntries(nodes), compareOptions{})
		if len(diffs) != 2 || !strings.Contains(diffs[0].String(), "changing while read") {
			t.Errorf("differences: %v", diffs)
		}
	}
}

// TestWriteEntryCanceled: a canceled context stops a file's copy, also
// when the data pass hashes it on the way.
func TestWriteEntryCanceled(t *testing.T) {
	root := t.TempDir()
	must(t, os.WriteFile(filepath.Join(root, "f"), []byte("content"), 0o644))
	nodes, err := scan(t.Context(), root, scanOptions{threads: 1})
	must(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, share := range []bool{false, true} {
		if err := writeOneEntry(t, ctx, root, nodes[1], share); !errors.Is(err, context.Canceled) {
			t.Errorf("share %v: got %v, want context.Canceled", share, err)
		}
	}
}

// TestStillSame: a write while a file is open, even one that keeps its
// size, is seen once it is read.
func TestStillSame(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f")
	must(t, os.WriteFile(p, []byte("before"), 0o644))
	old := time.Now().Add(-time.Hour)
	must(t, os.Chtimes(p, old, old))
	nodes, err := scan(t.Context(), root, scanOptions{threads: 1})
	must(t, err)
	f, _, err := openFile(root, nodes[1])
	must(t, err)
	defer f.Close()
	if _, err := stillSame(f, nodes[1]); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
	must(t, os.WriteFile(p, []byte("after!"), 0o644))
	if _, err := stillSame(f, nodes[1]); !errors.Is(err, ErrChanged) {
		t.Errorf("rewritten file, same size: %v, want ErrChanged", err)
	}
}
