package cachedir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
)

func TestLedger(t *testing.T) {
	l, err := OpenLedger(filepath.Join(t.TempDir(), "ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Verify("k", []byte("a")); !errors.Is(err, ErrUnrecorded) {
		t.Errorf("Verify before Record = %v, want ErrUnrecorded", err)
	}
	if err := l.Record("k", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify("k", []byte("a")); err != nil {
		t.Errorf("Verify of what was recorded: %v", err)
	}
	if err := l.Verify("k", []byte("b")); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify of other data = %v, want ErrMismatch", err)
	}
	// A new record replaces the old.
	if err := l.Record("k", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify("k", []byte("b")); err != nil {
		t.Errorf("Verify after re-recording: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(l.Dir(), "k")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record: %v, %v; want mode 0600", fi, err)
	}
	if err := l.Forget("k"); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify("k", []byte("b")); !errors.Is(err, ErrUnrecorded) {
		t.Errorf("Verify after Forget = %v, want ErrUnrecorded", err)
	}
	if err := l.Forget("k"); err != nil {
		t.Errorf("forgetting twice: %v", err)
	}
	for _, name := range []string{"", ".tmp", "a/b", "..", "a b", "ü"} {
		if err := l.Record(name, nil); err == nil {
			t.Errorf("Record(%q) accepted", name)
		}
		if err := l.Verify(name, nil); err == nil {
			t.Errorf("Verify(%q) accepted", name)
		}
	}
}

// A record counts only when only the user could have written it.
func TestLedgerForgedRecords(t *testing.T) {
	testenv.RequireRoot(t, "chown to another user")
	data := []byte("entry")
	tests := []struct {
		name  string
		forge func(t *testing.T, l *Ledger, p string)
	}{
		{"someone else's", func(t *testing.T, l *Ledger, p string) { lchown(t, p, nobody) }},
		{"writable by others", func(t *testing.T, l *Ledger, p string) {
			if err := os.Chmod(p, 0o666); err != nil {
				t.Fatal(err)
			}
		}},
		{"a link to a good record", func(t *testing.T, l *Ledger, p string) {
			if err := l.Record("other", data); err != nil {
				t.Fatal(err)
			}
			os.Remove(p)
			symlink(t, "other", p)
		}},
		{"not a digest", func(t *testing.T, l *Ledger, p string) {
			if err := os.WriteFile(p, []byte("yes\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"a directory", func(t *testing.T, l *Ledger, p string) {
			os.Remove(p)
			mkdir(t, p, 0o700)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := OpenLedger(filepath.Join(t.TempDir(), "ledger"))
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Record("k", data); err != nil {
				t.Fatal(err)
			}
			tt.forge(t, l, filepath.Join(l.Dir(), "k"))
			if err := l.Verify("k", data); !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify = %v, want ErrMismatch", err)
			}
		})
	}
}

func TestOpenLedgerRefusesUntrusted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "w")
	mkdir(t, dir, 0o777)
	if _, err := OpenLedger(filepath.Join(dir, "ledger")); !errors.Is(err, ErrUntrusted) {
		t.Errorf("OpenLedger under a world-writable directory = %v, want ErrUntrusted", err)
	}
}
