package bootstrap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/golden"
)

func TestLockfileGolden(t *testing.T) {
	l := &Lockfile{Format: LockFormat, Suite: "bookworm", Architecture: "amd64", Variant: "minbase", Components: []string{"main"},
		Include: []string{"less"}, Release: LockedRelease{Codename: "bookworm", Suite: "oldstable", Version: "12.15", Date: time.Date(2026, 7, 11, 10, 16, 37, 0, time.UTC)},
		Packages: []LockedPackage{
			{Name: "less", Version: "590-2.1~deb12u2", Architecture: "amd64", Filename: "pool/main/l/less/less_590-2.1~deb12u2_amd64.deb", Size: 132092, SHA256: strings.Repeat("1", 64)},
			{Name: "adduser", Version: "3.134", Architecture: "all", Filename: "pool/main/a/adduser/adduser_3.134_all.deb", Size: 183272, SHA256: strings.Repeat("a", 64)},
		}}
	got, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "golden", "minbase.lock"), got)
	back, err := ParseLockfile(got)
	if err != nil {
		t.Fatal(err)
	}
	if back.Packages[0].Name != "adduser" || !back.Release.Date.Equal(l.Release.Date) {
		t.Errorf("read back %+v", back)
	}
	// A hand-edited lockfile may spell a checksum in upper case: it is
	// what downloads are compared with, so it is normalized.
	upper, err := ParseLockfile([]byte(`{"format": 1, "packages": [{"name": "a", "version": "1", "filename": "a.deb", "sha256": "` + strings.Repeat("AB", 32) + `"}]}`))
	if err != nil || upper.Packages[0].SHA256 != strings.Repeat("ab", 32) {
		t.Errorf("upper-case sha256 read as %+v, %v", upper, err)
	}
	for _, bad := range []string{`{"format": 2}`, `{"format": 1, "packages": []}`, `{"format": 1, "extra": 1}`,
		`{"format": 1, "packages": [{"name": "a", "version": "1", "filename": "../x.deb", "sha256": "` + strings.Repeat("0", 64) + `"}]}`,
		`{"format": 1, "packages": [{"name": "a", "version": "1", "filename": "a.deb"}]}`} {
		if _, err := ParseLockfile([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseLockfile(%s) = %v, want ErrMalformed", bad, err)
		}
	}
}

// FuzzParseLockfile: a lockfile comes from disk, maybe edited by hand.
func FuzzParseLockfile(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "golden", "minbase.lock")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLockfile(data)
		if err != nil {
			return
		}
		for _, p := range l.Packages {
			if _, ok := p.sum().Best(); !ok || hasDotDot(p.Filename) {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}
