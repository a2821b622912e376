package stagecache

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestKeyParts(t *testing.T) {
	sum := func(f func(k *Key)) string {
		k := NewKey("test")
		f(k)
		return k.Sum()
	}
	base := sum(func(k *Key) { k.Add("a", "bc") })
	for _, tt := range []struct {
		name string
		f    func(k *Key)
		same bool
	}{
		{"same parts", func(k *Key) { k.Add("a", "bc") }, true},
		{"moved boundary", func(k *Key) { k.Add("a", "b", "c") }, false},
		{"joined name", func(k *Key) { k.Add("ab", "c") }, false},
		{"bytes instead", func(k *Key) { k.AddBytes("a", []byte("bc")) }, false},
		{"other value", func(k *Key) { k.Add("a", "bd") }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := sum(tt.f) == base; got != tt.same {
				t.Errorf("same key = %v, want %v", got, tt.same)
			}
		})
	}
	if k := NewKey("other"); k.Add("a", "bc").Sum() == base {
		t.Error("the kind does not change the key")
	}
}

func TestKeyPath(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	write("tree/a", "one", 0o644)
	write("tree/sub/b", "two", 0o644)
	os.Symlink("a", filepath.Join(dir, "tree/link"))
	key := func() string {
		t.Helper()
		k := NewKey("test")
		if err := k.AddPath("src", filepath.Join(dir, "tree")); err != nil {
			t.Fatal(err)
		}
		return k.Sum()
	}
	first := key()
	old := time.Unix(1e9, 0)
	os.Chtimes(filepath.Join(dir, "tree/a"), old, old)
	if key() != first {
		t.Error("a new mtime changed the key: contents, not times, make it")
	}
	for _, tt := range []struct {
		name   string
		change func()
	}{
		{"content", func() { write("tree/a", "ONE", 0o644) }},
		{"mode", func() { os.Chmod(filepath.Join(dir, "tree/a"), 0o755) }},
		{"new file", func() { write("tree/sub/c", "", 0o644) }},
		{"link target", func() {
			os.Remove(filepath.Join(dir, "tree/link"))
			os.Symlink("sub/b", filepath.Join(dir, "tree/link"))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := key()
			tt.change()
			if key() == before {
				t.Errorf("changing the %s left the key as it was", tt.name)
			}
		})
	}
	if err := NewKey("test").AddPath("src", filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing input gave a key")
	}
}
