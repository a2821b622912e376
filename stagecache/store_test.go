package stagecache

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/snapshot"
)

func testKey(s string) string { return NewKey("test").Add("k", s).Sum() }

// testRoot makes a small tree: a directory, a file, a link.
func testRoot(t *testing.T, content string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/motd"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("motd", filepath.Join(root, "etc/issue")); err != nil {
		t.Fatal(err)
	}
	return root
}

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPutLookupRestore(t *testing.T) {
	s := openStore(t, t.TempDir())
	key := testKey("a")
	if e, err := s.Lookup(key); e != nil || err != nil {
		t.Fatalf("empty store: %v %v", e, err)
	}
	state, _ := json.Marshal(map[string]string{"kernel_version": "6.1.0-1-amd64"})
	src := testRoot(t, "hello\n")
	e, err := s.Put(t.Context(), Meta{Key: key, Step: "packages", Recipe: "r", State: state}, src, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Lookup(key)
	if err != nil || got == nil {
		t.Fatalf("lookup after put: %v %v", got, err)
	}
	var st map[string]string
	if err := json.Unmarshal(got.State, &st); err != nil || st["kernel_version"] != "6.1.0-1-amd64" {
		t.Errorf("state = %s, %v", got.State, err)
	}
	if got.SHA256 != e.SHA256 || got.Step != "packages" || got.Entries != 4 {
		t.Errorf("entry = %+v", got.Meta)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	if err := s.Restore(t.Context(), got, dst, snapshot.RestoreOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "etc/issue")); err != nil || string(b) != "hello\n" {
		t.Errorf("restored /etc/issue = %q, %v", b, err)
	}
	out := filepath.Join(t.TempDir(), "out.tar.zst")
	if err := s.Export(t.Context(), got, out); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Verify(t.Context(), out, snapshot.VerifyOptions{}); err != nil {
		t.Errorf("the exported archive does not verify: %v", err)
	}
	entries, err := s.List()
	if err != nil || len(entries) != 1 || entries[0].DiskBytes < e.Size {
		t.Errorf("List = %+v, %v", entries, err)
	}
}

// TestCorruptEntries damages an entry in each way a disk or a crash can,
// and checks that it is reported corrupt, removed, and never restored.
func TestCorruptEntries(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, e *Entry)
		lookup bool // Lookup still finds it (the damage shows on use)
	}{
		{"flipped byte", func(t *testing.T, e *Entry) {
			b, _ := os.ReadFile(e.ArchivePath())
			b[len(b)/2] ^= 0xff
			os.WriteFile(e.ArchivePath(), b, 0o644)
		}, true},
		{"truncated", func(t *testing.T, e *Entry) { os.Truncate(e.ArchivePath(), e.Size/2) }, true},
		{"no sidecar", func(t *testing.T, e *Entry) { os.Remove(snapshot.SidecarPath(e.ArchivePath())) }, true},
		{"empty sidecar", func(t *testing.T, e *Entry) { os.WriteFile(snapshot.SidecarPath(e.ArchivePath()), nil, 0o644) }, true},
		{"garbled sidecar", func(t *testing.T, e *Entry) {
			os.WriteFile(snapshot.SidecarPath(e.ArchivePath()), []byte("garbage\n"), 0o644)
		}, true},
		{"no archive", func(t *testing.T, e *Entry) { os.Remove(e.ArchivePath()) }, true},
		{"bad meta", func(t *testing.T, e *Entry) { os.WriteFile(filepath.Join(e.Dir, metaName), []byte("{"), 0o644) }, false},
		{"meta of another key", func(t *testing.T, e *Entry) {
			b, _ := os.ReadFile(filepath.Join(e.Dir, metaName))
			os.WriteFile(filepath.Join(e.Dir, metaName), []byte(strings.ReplaceAll(string(b), e.Key, testKey("other"))), 0o644)
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			key := testKey(tt.name)
			e, err := s.Put(t.Context(), Meta{Key: key, Step: "s"}, testRoot(t, strings.Repeat("data ", 10000)), snapshot.Options{})
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, e)
			got, err := s.Lookup(key)
			if err != nil {
				t.Fatal(err)
			}
			if (got != nil) != tt.lookup {
				t.Fatalf("Lookup found it: %v", got != nil)
			}
			if got != nil {
				dst := filepath.Join(t.TempDir(), "restored")
				err := s.Restore(t.Context(), got, dst, snapshot.RestoreOptions{NoSync: true})
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Restore = %v, want ErrCorrupt", err)
				}
				if _, err := os.Lstat(dst); !errors.Is(err, os.ErrNotExist) {
					t.Error("a corrupt entry left a root behind")
				}
			}
			if again, _ := s.Lookup(key); again != nil {
				t.Error("the corrupt entry is still in the store")
			}
			des, _ := os.ReadDir(s.Dir())
			for _, de := range des {
				if n := de.Name(); n != lockName && n != commitLock && n != buildsName && n != ledgerName {
					t.Errorf("left in the store: %s", n)
				}
			}
			if names, err := s.ledger.Names(); err != nil || len(names) != 0 {
				t.Errorf("left in the ledger: %v, %v", names, err)
			}
		})
	}
}

// TestConcurrentPut stores one key from several builds at once: each
// gets a complete entry, and one is kept.
func TestConcurrentPut(t *testing.T) {
	dir := t.TempDir()
	src := testRoot(t, "same\n")
	key := testKey("same")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(dir, logging.Discard())
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			e, err := s.Put(context.Background(), Meta{Key: key, Step: "s"}, src, snapshot.Options{})
			if err == nil && e == nil {
				err = errors.New("no entry")
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s := openStore(t, dir)
	entries, err := s.List()
	if err != nil || len(entries) != 1 {
		t.Fatalf("List = %d entries, %v", len(entries), err)
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			t.Errorf("temporary entry left: %s", de.Name())
		}
	}
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	put := func(name string) string {
		t.Helper()
		k := testKey(name)
		if _, err := s.Put(t.Context(), Meta{Key: k, Step: name}, testRoot(t, name), snapshot.Options{}); err != nil {
			t.Fatal(err)
		}
		return k
	}
	base, day1, day2, day3, other := put("base"), put("day1"), put("day2"), put("day3"), put("other")
	for i, b := range []Build{
		{Recipe: "r", Output: "out", Keys: []string{base, day1}},
		{Recipe: "r", Output: "out", Keys: []string{base, day2}},
		{Recipe: "r", Output: "out", Keys: []string{base, day3}},
		{Recipe: "r", Output: "elsewhere", Keys: []string{other}},
	} {
		b.Time = now.Add(time.Duration(i) * time.Hour)
		if err := s.RecordBuild(b); err != nil {
			t.Fatal(err)
		}
	}
	// Make day3 the most recently used and base the least.
	for i, k := range []string{base, other, day1, day2, day3} {
		tm := now.Add(time.Duration(i) * time.Minute)
		os.Chtimes(filepath.Join(dir, k), tm, tm)
	}
	os.MkdirAll(filepath.Join(dir, tmpPrefix+"crashed"), 0o700)

	if _, err := s.Prune(PruneOptions{Keep: 1}); err == nil {
		t.Fatal("Prune ran on a store opened for a build")
	}
	s.Close()
	ex, err := OpenExclusive(dir, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ex.Close()
	build := openStore(t, dir)
	if _, err := OpenExclusive(dir, logging.Discard()); !errors.Is(err, ErrBusy) {
		t.Fatalf("OpenExclusive while a build holds the store: %v, want ErrBusy", err)
	}
	build.Close()

	ex, err = OpenExclusive(dir, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	res, err := ex.Prune(PruneOptions{Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Debris != 1 || len(res.Removed) != 1 || res.Removed[0].Key != day1 || res.Kept != 4 {
		t.Errorf("keep 2: debris %d, removed %v, kept %d", res.Debris, keysOf(res.Removed), res.Kept)
	}
	one := res.KeptBytes / int64(res.Kept)
	res, err = ex.Prune(PruneOptions{MaxSize: 2*one + one/2})
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(res.Removed); len(got) != 2 || got[0] != base || got[1] != other {
		t.Errorf("max size: removed %v, want the two least recently used (base, other)", got)
	}
}

func keysOf(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Key)
	}
	return out
}

// TestOpenClearsDebris: a build opening the store removes what killed
// builds left (trash, and temporary entries long unwritten), never a
// temporary entry another build may be writing.
func TestOpenClearsDebris(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * staleAfter)
	for name, mtime := range map[string]time.Time{
		tmpPrefix + "killed":    old,
		tmpPrefix + "writing":   time.Now(),
		trashPrefix + "removed": time.Now(),
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(p, 0o700)
		os.WriteFile(filepath.Join(p, "root.tar.zst"), []byte("x"), 0o644)
		os.Chtimes(filepath.Join(p, "root.tar.zst"), mtime, mtime)
		os.Chtimes(p, mtime, mtime)
	}
	// The killed one's archive was written long ago, but one file in a
	// writing entry is enough to keep it.
	os.Chtimes(filepath.Join(dir, tmpPrefix+"writing"), old, old)
	openStore(t, dir)
	var left []string
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			left = append(left, de.Name())
		}
	}
	if got := strings.Join(left, " "); got != tmpPrefix+"writing" {
		t.Errorf("left: %q, want only %s", got, tmpPrefix+"writing")
	}
}
