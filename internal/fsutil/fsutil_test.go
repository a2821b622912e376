package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFileAtomic(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteAtomic(p, 0o644, func(f *os.File) error {
		f.Write([]byte("half"))
		return errors.New("disk on fire")
	})
	if err == nil {
		t.Fatal("WriteAtomic() = nil")
	}
	b, _ := os.ReadFile(p)
	if string(b) != "one" {
		t.Errorf("content = %q after a failed write", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v", fi.Mode())
	}
}

func TestTryLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	a, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
		t.Errorf("second TryLock() = %v, want ErrLocked", err)
	}
	a.Unlock()
	b, err := TryLock(p)
	if err != nil {
		t.Errorf("TryLock() after Unlock = %v", err)
	}
	b.Unlock()
}

func TestExchange(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("A"), 0o644)
	os.WriteFile(b, []byte("B"), 0o644)
	if err := Exchange(a, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(a); string(got) != "B" {
		t.Errorf("a = %q", got)
	}
}

func TestIsEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if ok, err := IsEmptyDir(dir); !ok || err != nil {
		t.Errorf("empty dir: %v %v", ok, err)
	}
	if ok, err := IsEmptyDir(filepath.Join(dir, "missing")); !ok || err != nil {
		t.Errorf("missing dir: %v %v", ok, err)
	}
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	if ok, err := IsEmptyDir(dir); ok || err != nil {
		t.Errorf("non-empty dir: %v %v", ok, err)
	}
}

func TestWriteAtomicBlamesTheDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	err := WriteFileAtomic(filepath.Join(dir, "f"), nil, 0o644)
	if !errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), ".tmp-") || !strings.Contains(err.Error(), dir) {
		t.Errorf("WriteFileAtomic() into a missing directory = %v", err)
	}
}
