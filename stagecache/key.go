package stagecache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Key accumulates what a stage's result depends on. Every part is written
// with its name and length, so that two different lists of parts never
// hash alike ("ab"+"c" against "a"+"bc").
type Key struct {
	h hash.Hash
}

// NewKey starts a key; kind separates keys of different purposes.
func NewKey(kind string) *Key {
	k := &Key{h: sha256.New()}
	k.Add("kind", kind)
	return k
}

func (k *Key) field(name string, n int) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(len(name)))
	k.h.Write(b[:])
	io.WriteString(k.h, name)
	binary.BigEndian.PutUint64(b[:], uint64(n))
	k.h.Write(b[:])
}

// Add adds a named list of strings.
func (k *Key) Add(name string, values ...string) *Key {
	k.field(name, len(values))
	for _, v := range values {
		k.AddBytes("", []byte(v))
	}
	return k
}

// AddBytes adds a named byte string.
func (k *Key) AddBytes(name string, b []byte) *Key {
	k.field(name, len(b))
	k.h.Write(b)
	return k
}

// AddPath adds the content of the file or directory tree at path: for each
// entry its path relative to path, type, permission bits, and content or
// link target. Modification times and owners are left out: a copy of the
// same files gives the same key.
func (k *Key) AddPath(name, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	k.field(name, 0)
	if !fi.IsDir() {
		return k.addFile(".", path, fi)
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return k.addFile(rel, p, fi)
	})
}

func (k *Key) addFile(rel, p string, fi fs.FileInfo) error {
	k.Add("entry", rel, fi.Mode().Type().String(), strconv.FormatUint(uint64(fi.Mode().Perm()), 8))
	switch {
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		k.field("content", int(fi.Size()))
		n, err := io.Copy(k.h, f)
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		if n != fi.Size() {
			return fmt.Errorf("reading %s: it changed size while being read", p)
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(p)
		if err != nil {
			return err
		}
		k.Add("target", t)
	}
	return nil
}

// Sum returns the key as 64 hexadecimal digits.
func (k *Key) Sum() string {
	return hex.EncodeToString(k.h.Sum(nil))
}
