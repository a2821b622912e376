package stagecache

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/snapshot"
)

// forgery is what someone who can write an entry, but not the ledger,
// puts in it: another root's archive with a sidecar that matches it, and
// the entry's meta.json either rewritten to match too or left alone.
type forgery struct {
	archive, sidecar, meta []byte
}

// forge makes the forgery of entry e: the archive of a root with other
// content.
func forge(t *testing.T, e *Entry, rewriteMeta bool) forgery {
	t.Helper()
	p := filepath.Join(t.TempDir(), e.Archive)
	res, err := snapshot.WriteFile(t.Context(), testRoot(t, "forged\n"), p, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var f forgery
	f.archive, _ = os.ReadFile(p)
	f.sidecar, _ = os.ReadFile(snapshot.SidecarPath(p))
	f.meta, _ = os.ReadFile(filepath.Join(e.Dir, metaName))
	if rewriteMeta {
		m := e.Meta
		m.SHA256, m.Size, m.Entries, m.Bytes = res.SHA256, res.Size, res.Entries, res.Bytes
		b, _ := json.MarshalIndent(m, "", "  ")
		f.meta = append(b, '\n')
	}
	if res.SHA256 == e.SHA256 || !strings.Contains(string(f.sidecar), res.SHA256) {
		t.Fatalf("the forgery is not another, consistent archive: %s", f.sidecar)
	}
	return f
}

// asRoot writes the forgery as the cache's owner would: files the owner
// owns, which only the ledger tells apart.
func (f forgery) asRoot(t *testing.T, e *Entry) {
	for name, b := range map[string][]byte{e.Archive: f.archive, e.Archive + ".sha256": f.sidecar, metaName: f.meta} {
		if err := os.WriteFile(filepath.Join(e.Dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// asNobody writes the forgery as another user to whom the entry's
// directory was given: exactly the one the ledger guards against.
func (f forgery) asNobody(t *testing.T, e *Entry) {
	testenv.RequireRoot(t, "acting as another user")
	src := t.TempDir()
	for name, b := range map[string][]byte{e.Archive: f.archive, e.Archive + ".sha256": f.sidecar, metaName: f.meta} {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Let nobody reach the forgery and the entry, and write the entry.
	for _, d := range []string{src, filepath.Dir(src), filepath.Dir(e.Dir), filepath.Dir(filepath.Dir(e.Dir))} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(e.Dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	script := `set -e; for f in "$1"/*; do cp "$f" "$2/.new"; mv -f "$2/.new" "$2/${f##*/}"; done`
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script, "sh", src, e.Dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("forging as nobody: %v: %s", err, out)
	}
	fi, err := os.Stat(e.ArchivePath())
	if err != nil || fi.Size() != int64(len(f.archive)) {
		t.Fatalf("the forgery did not take: %v, %v", fi, err)
	}
}

// TestForgedEntry rewrites an entry consistently, archive, sidecar and
// meta.json, or archive and sidecar alone: the first no longer matches
// the ledger, the second no longer matches its meta.json, which does. It
// is never restored either way.
func TestForgedEntry(t *testing.T) {
	for _, tt := range []struct {
		name        string
		rewriteMeta bool
		nobody      bool
	}{
		{"archive, sidecar and meta by the owner", true, false},
		{"archive and sidecar by the owner", false, false},
		{"archive, sidecar and meta by another user", true, true},
		{"archive and sidecar by another user", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			key := testKey("forged")
			e, err := s.Put(t.Context(), Meta{Key: key, Step: "s"}, testRoot(t, "genuine\n"), snapshot.Options{})
			if err != nil {
				t.Fatal(err)
			}
			f := forge(t, e, tt.rewriteMeta)
			if tt.nobody {
				f.asNobody(t, e)
			} else {
				f.asRoot(t, e)
			}
			got, err := s.Lookup(key)
			if err != nil {
				t.Fatal(err)
			}
			if tt.rewriteMeta && got != nil {
				t.Fatal("Lookup trusted a meta.json the ledger did not record")
			}
			if got != nil {
				dst := filepath.Join(t.TempDir(), "restored")
				err := s.Restore(t.Context(), got, dst, snapshot.RestoreOptions{NoSync: true})
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Restore of the forgery = %v, want ErrCorrupt", err)
				}
				if _, err := os.Lstat(dst); !errors.Is(err, os.ErrNotExist) {
					t.Error("the forgery left a root behind")
				}
				// Nor is it handed on as the snapshot.
				if err := s.Export(t.Context(), got, filepath.Join(t.TempDir(), "out.tar.zst")); err == nil {
					t.Error("Export handed on the forgery")
				}
			}
			if again, _ := s.Lookup(key); again != nil {
				t.Error("the forged entry is still in the store")
			}
		})
	}
}

// An entry the ledger has no record of, such as one an older krgimage
// stored, is a miss, and is removed so that the next build stores it anew.
func TestUnrecordedEntryIsMiss(t *testing.T) {
	s := openStore(t, t.TempDir())
	key := testKey("unrecorded")
	src := testRoot(t, "x\n")
	if _, err := s.Put(t.Context(), Meta{Key: key, Step: "s"}, src, snapshot.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := s.ledger.Forget(key); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Lookup(key); e != nil || err != nil {
		t.Fatalf("Lookup of an unrecorded entry = %v, %v; want a miss", e, err)
	}
	if _, err := os.Lstat(filepath.Join(s.Dir(), key)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the unrecorded entry was left in place")
	}
	if _, err := s.Put(t.Context(), Meta{Key: key, Step: "s"}, src, snapshot.Options{}); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Lookup(key); e == nil || err != nil {
		t.Errorf("Lookup after storing it anew = %v, %v", e, err)
	}
}

// Storing over an entry the ledger does not vouch for replaces it.
func TestPutReplacesUnrecorded(t *testing.T) {
	s := openStore(t, t.TempDir())
	key := testKey("replace")
	src := testRoot(t, "x\n")
	if _, err := s.Put(t.Context(), Meta{Key: key, Step: "old"}, src, snapshot.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := s.ledger.Forget(key); err != nil {
		t.Fatal(err)
	}
	e, err := s.Put(t.Context(), Meta{Key: key, Step: "new"}, src, snapshot.Options{})
	if err != nil || e == nil || e.Step != "new" {
		t.Fatalf("Put over an unrecorded entry = %+v, %v", e, err)
	}
	if got, err := s.Lookup(key); got == nil || err != nil || got.Step != "new" {
		t.Errorf("Lookup = %+v, %v", got, err)
	}
}

func TestOpenRefusesUntrusted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stages")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("Open of a world-writable store = %v", err)
	}
}

// Prune forgets the records of entries that are gone.
func TestPruneForgetsMissing(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenExclusive(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := testKey("gone")
	if _, err := s.Put(t.Context(), Meta{Key: key, Step: "s"}, testRoot(t, "x\n"), snapshot.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, key)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if names, err := s.ledger.Names(); err != nil || len(names) != 0 {
		t.Errorf("ledger after Prune: %v, %v", names, err)
	}
}
