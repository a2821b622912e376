package cachedir

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/krgimage/krgimage/internal/fsutil"
)

// Errors Verify returns. Either way, what was checked must not be used.
var (
	// ErrUnrecorded: the ledger has no record of the name.
	ErrUnrecorded = errors.New("not in the cache's ledger")
	// ErrMismatch: the record holds another digest, or is not one only
	// the user can have written.
	ErrMismatch = errors.New("does not match the cache's ledger")
)

// maxRecord bounds what Verify reads of a record: a digest and a newline.
const maxRecord = 128

// Ledger is a directory of records, one per thing a cache stored, each the
// SHA-256 of what was stored. It sits where only the user can write (Open
// checks it), so an entry rewritten by someone who could write the entry,
// but not the ledger, no longer matches it.
type Ledger struct {
	dir string
}

// OpenLedger opens the ledger in dir, creating it (see Open).
func OpenLedger(dir string) (*Ledger, error) {
	abs, err := Open(dir)
	if err != nil {
		return nil, err
	}
	return &Ledger{dir: abs}, nil
}

// Dir is the ledger's directory.
func (l *Ledger) Dir() string { return l.dir }

// Digest is the SHA-256 of data, as records hold it.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Record records data as what name holds.
func (l *Ledger) Record(name string, data []byte) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(p, []byte(Digest(data)+"\n"), 0o600); err != nil {
		return fmt.Errorf("recording %s in the cache's ledger: %w", name, err)
	}
	return nil
}

// Verify says whether data is what the ledger recorded for name: nil, or
// an error wrapping ErrUnrecorded or ErrMismatch.
func (l *Ledger) Verify(name string, data []byte) error {
	want, err := l.read(name)
	if err != nil {
		return err
	}
	if got := Digest(data); got != want {
		return fmt.Errorf("%s %w: sha256 %s, recorded %s", name, ErrMismatch, got, want)
	}
	return nil
}

// Forget removes name's record. A record that was never made is no error.
func (l *Ledger) Forget(name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// path is name's record. Names are single, visible file names: temporary
// records start with a dot.
func (l *Ledger) path(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) {
		return "", fmt.Errorf("invalid ledger name %q", name)
	}
	return filepath.Join(l.dir, name), nil
}

// read returns name's recorded digest, from a record that is the user's
// and that no one else can write.
func (l *Ledger) read(name string) (string, error) {
	p, err := l.path(name)
	if err != nil {
		return "", err
	}
	f, err := openRecord(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s %w", name, ErrUnrecorded)
	}
	if err != nil {
		return "", fmt.Errorf("%s %w: %w", name, ErrMismatch, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	uid, err := ownerOf(fi)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() || uid != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return "", fmt.Errorf("%s %w: its record %s is not a file only this user can write (uid %d, mode %s)", name, ErrMismatch, p, uid, modeString(fi))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return "", err
	}
	d := strings.TrimSuffix(string(b), "\n")
	if len(b) > maxRecord || len(d) != sha256.Size*2 {
		return "", fmt.Errorf("%s %w: its record %s is not a digest", name, ErrMismatch, p)
	}
	return d, nil
}

// Names lists the names the ledger has records of.
func (l *Ledger) Names() ([]string, error) {
	des, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range des {
		if _, err := l.path(de.Name()); err == nil && de.Type().IsRegular() {
			out = append(out, de.Name())
		}
	}
	return out, nil
}

// CheckFile says whether p is a regular file that only the user (and
// root) can change: what a cache hands on after checking its content,
// which must stay what was checked.
func CheckFile(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	uid, err := ownerOf(fi)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || uid != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is not a file only this user can write (uid %d, mode %s)", p, uid, modeString(fi))
	}
	return nil
}
