package pipeline

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// releaseFile writes a Release file in the form Debian's archive has.
func releaseFile(date string, packagesSum string) string {
	return `-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Origin: Debian
Suite: oldstable
Codename: bookworm
Date: ` + date + `
Architectures: all amd64 arm64
Components: main contrib
SHA256:
 0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a0908070605040302010ff   123 contrib/binary-amd64/Packages
 ` + packagesSum + ` 4567 main/binary-amd64/Packages
 1111111111111111111111111111111111111111111111111111111111111111  890 main/binary-amd64/Packages.xz
 2222222222222222222222222222222222222222222222222222222222222222  890 main/binary-arm64/Packages.xz
 3333333333333333333333333333333333333333333333333333333333333333  890 main/i18n/Translation-en
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCAAdFiEE...
-----END PGP SIGNATURE-----
`
}

const sumA = "aaaa000000000000000000000000000000000000000000000000000000000000"

func TestParseRelease(t *testing.T) {
	base, err := parseRelease([]byte(releaseFile("Sat, 11 Jul 2026 10:16:37 UTC", sumA)), []string{"main"}, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 7, 11, 10, 16, 37, 0, time.UTC); !base.Date.Equal(want) {
		t.Errorf("date = %s, want %s", base.Date, want)
	}
	for _, tt := range []struct {
		name       string
		file       string
		comps      []string
		arch       string
		sameDigest bool
	}{
		{"signed again", releaseFile("Sun, 12 Jul 2026 10:00:00 UTC", sumA), []string{"main"}, "amd64", true},
		{"a package changed", releaseFile("Sat, 11 Jul 2026 10:16:37 UTC", strings.Replace(sumA, "aaaa", "bbbb", 1)), []string{"main"}, "amd64", false},
		{"another component", releaseFile("Sat, 11 Jul 2026 10:16:37 UTC", sumA), []string{"main", "contrib"}, "amd64", false},
		{"another architecture", releaseFile("Sat, 11 Jul 2026 10:16:37 UTC", sumA), []string{"main"}, "arm64", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRelease([]byte(tt.file), tt.comps, tt.arch)
			if err != nil {
				t.Fatal(err)
			}
			if same := r.Indices == base.Indices; same != tt.sameDigest {
				t.Errorf("same digest = %v, want %v", same, tt.sameDigest)
			}
		})
	}
	if _, err := parseRelease([]byte("Origin: Debian\n"), []string{"main"}, "amd64"); err == nil {
		t.Error("a Release without a Date parsed")
	}
	if _, err := parseRelease([]byte("Date: yesterday\n"), []string{"main"}, "amd64"); err == nil {
		t.Error("a Release with a bad Date parsed")
	}
}

func FuzzParseRelease(f *testing.F) {
	f.Add([]byte(releaseFile("Sat, 11 Jul 2026 10:16:37 UTC", sumA)))
	f.Add([]byte("Date: Sat, 11 Jul 2026 10:16:37 UTC\nMD5Sum:\n abc 1 main/binary-amd64/Packages\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseRelease(b, []string{"main"}, "amd64")
	})
}

func TestReleasesFetch(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		// An archived suite: no InRelease, only Release.
		if r.URL.Path != "/debian/dists/lenny/Release" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(releaseFile("Sat, 14 Feb 2009 10:00:00 UTC", sumA)))
	}))
	defer srv.Close()
	rel := newReleases()
	for range 2 {
		r, err := rel.get(t.Context(), srv.URL+"/debian", "lenny", []string{"main"}, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		if r.Date.Year() != 2009 {
			t.Errorf("date = %s", r.Date)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("%d requests, want 2 (InRelease, then Release, once per build)", n)
	}
	if _, err := rel.get(t.Context(), srv.URL+"/debian", "bookworm", []string{"main"}, "amd64"); err == nil {
		t.Error("a suite the mirror lacks has a Release")
	}

	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "dists/bookworm"), 0o755)
	os.WriteFile(filepath.Join(dir, "dists/bookworm/InRelease"), []byte(releaseFile("Sat, 11 Jul 2026 10:16:37 UTC", sumA)), 0o644)
	if r, err := newReleases().get(t.Context(), "file://"+dir, "bookworm", []string{"main"}, "amd64"); err != nil || r.Date.Year() != 2026 {
		t.Errorf("file mirror: %+v, %v", r, err)
	}
}
