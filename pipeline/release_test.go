package pipeline

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/krgimage/krgimage/bootstrap/bootstraptest"
	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/logging"
)

// releaseText is a Release file in the form Debian's archive has, before
// it is signed.
func releaseText(date string, packagesSum string) string {
	return `Origin: Debian
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
`
}

const sumA = "aaaa000000000000000000000000000000000000000000000000000000000000"

func digestOf(t *testing.T, text string, comps []string, arch string) release {
	t.Helper()
	r, err := debarchive.ParseRelease([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	d, err := releaseDigest(r, comps, arch)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestReleaseDigest(t *testing.T) {
	base := digestOf(t, releaseText("Sat, 11 Jul 2026 10:16:37 UTC", sumA), []string{"main"}, "amd64")
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
		{"signed again", releaseText("Sun, 12 Jul 2026 10:00:00 UTC", sumA), []string{"main"}, "amd64", true},
		{"a package changed", releaseText("Sat, 11 Jul 2026 10:16:37 UTC", strings.Replace(sumA, "aaaa", "bbbb", 1)), []string{"main"}, "amd64", false},
		{"another component", releaseText("Sat, 11 Jul 2026 10:16:37 UTC", sumA), []string{"main", "contrib"}, "amd64", false},
		{"another architecture", releaseText("Sat, 11 Jul 2026 10:16:37 UTC", sumA), []string{"main"}, "arm64", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if same := digestOf(t, tt.file, tt.comps, tt.arch).Indices == base.Indices; same != tt.sameDigest {
				t.Errorf("same digest = %v, want %v", same, tt.sameDigest)
			}
		})
	}
	for _, text := range []string{"Codename: bookworm\n", "Codename: bookworm\nDate: yesterday\n"} {
		r, err := debarchive.ParseRelease([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := releaseDigest(r, []string{"main"}, "amd64"); err == nil {
			t.Errorf("a Release without a good Date dates the build: %q", text)
		}
	}
}

// releaseEnv is a build's Env for a recipe trusting keyring.
func releaseEnv(t *testing.T, extra string) *Env {
	t.Helper()
	return bootstrapEnv(loadTestRecipe(t, t.TempDir(), "suite: bookworm\n"+extra), "")
}

func TestReleasesFetch(t *testing.T) {
	// An archived suite: no InRelease, Release and Release.gpg.
	lenny := bootstraptest.NewRepo(t, bootstraptest.Spec{Suite: "lenny", Style: bootstraptest.Lenny})
	if err := lenny.WriteRelease([]byte(strings.Replace(releaseText("Sat, 14 Feb 2009 10:00:00 UTC", sumA), "bookworm", "lenny", 1))); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	files := http.FileServer(http.Dir(lenny.Dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	rel := newReleases(releaseEnv(t, "keyring: "+lenny.Keyring+"\n"))
	for range 2 {
		r, err := rel.get(t.Context(), srv.URL, "lenny", []string{"main"}, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		if r.Date.Year() != 2009 {
			t.Errorf("date = %s", r.Date)
		}
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("%d requests, want 3 (InRelease, Release, Release.gpg, once per build)", n)
	}
	if _, err := rel.get(t.Context(), srv.URL, "bookworm", []string{"main"}, "amd64"); !errors.Is(err, debarchive.ErrUnknownSuite) {
		t.Errorf("a suite the mirror lacks: %v, want ErrUnknownSuite", err)
	}

	modern := bootstraptest.NewRepo(t, bootstraptest.Spec{})
	if err := modern.WriteRelease([]byte(releaseText("Sat, 11 Jul 2026 10:16:37 UTC", sumA))); err != nil {
		t.Fatal(err)
	}
	r, err := newReleases(releaseEnv(t, "keyring: "+modern.Keyring+"\n")).get(t.Context(), "file://"+modern.Dir, "bookworm", []string{"main"}, "amd64")
	if err != nil || r.Date.Year() != 2026 {
		t.Errorf("file mirror: %+v, %v", r, err)
	}
}

// TestReleasesUnverified: the cache keys and the build's date come from
// a Release its signature vouches for, or from none.
func TestReleasesUnverified(t *testing.T) {
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{})
	other := bootstraptest.NewRepo(t, bootstraptest.Spec{})
	good := releaseText("Sat, 11 Jul 2026 10:16:37 UTC", sumA)
	tests := []struct {
		name  string
		extra string
		edit  func(t *testing.T)
		want  error
	}{
		{name: "signed by another key", extra: "keyring: " + other.Keyring + "\n", want: debarchive.ErrUnknownKey},
		{name: "no keyring", extra: "keyring: " + filepath.Join(t.TempDir(), "none.gpg") + "\n", want: os.ErrNotExist},
		{name: "tampered", extra: "keyring: " + repo.Keyring + "\n", edit: func(t *testing.T) {
			p := filepath.Join(repo.Dists(), "InRelease")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), "aaaa", "bbbb", 1)), 0o644)
		}, want: debarchive.ErrSignature},
		{name: "unsigned", extra: "keyring: " + repo.Keyring + "\n", edit: func(t *testing.T) {
			os.Remove(filepath.Join(repo.Dists(), "InRelease"))
			os.WriteFile(filepath.Join(repo.Dists(), "Release"), []byte(good), 0o644)
		}, want: debarchive.ErrSignature},
		{name: "another suite's", extra: "keyring: " + repo.Keyring + "\n", edit: func(t *testing.T) {
			repo.WriteRelease([]byte(strings.Replace(good, "Codename: bookworm", "Codename: bullseye", 1)))
		}, want: debarchive.ErrWrongSuite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := repo.WriteRelease([]byte(good)); err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				tt.edit(t)
			}
			_, err := newReleases(releaseEnv(t, tt.extra)).get(t.Context(), "file://"+repo.Dir, "bookworm", []string{"main"}, "amd64")
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	// insecure: true says so; the Release is then taken as it is.
	os.Remove(filepath.Join(repo.Dists(), "InRelease"))
	os.WriteFile(filepath.Join(repo.Dists(), "Release"), []byte(good), 0o644)
	if _, err := newReleases(releaseEnv(t, "insecure: true\n")).get(t.Context(), "file://"+repo.Dir, "bookworm", []string{"main"}, "amd64"); err != nil {
		t.Errorf("insecure: %v", err)
	}
}

func TestReleasesRedact(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "busy", http.StatusBadGateway)
	}))
	defer srv.Close()
	mirror := strings.Replace(srv.URL, "//", "//user:s3cret@", 1) + "/debian"
	env := releaseEnv(t, "insecure: true\n")
	env.Log = logging.Discard()
	_, err := newReleases(env).get(t.Context(), mirror, "bookworm", []string{"main"}, "amd64")
	if !errors.Is(err, debarchive.ErrMirror) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("get() = %v, want ErrMirror without the password", err)
	}
}

// TestEpochFromVerifiedRelease: the build is dated by the Release only
// when its signature holds.
func TestEpochFromVerifiedRelease(t *testing.T) {
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{})
	other := bootstraptest.NewRepo(t, bootstraptest.Spec{})
	if err := repo.WriteRelease([]byte(releaseText("Sat, 11 Jul 2026 10:16:37 UTC", sumA))); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		keyring string
		dated   bool
	}{{repo.Keyring, true}, {other.Keyring, false}} {
		env := releaseEnv(t, "keyring: "+tt.keyring+"\n")
		env.Mirror = Mirror{URL: "file://" + repo.Dir}
		o := &Options{EpochFromRelease: true}
		resolveEpoch(t.Context(), o, env, newReleases(env))
		if dated := env.SourceDateEpoch != nil; dated != tt.dated {
			t.Fatalf("keyring %s: dated %v, want %v", tt.keyring, dated, tt.dated)
		}
		if tt.dated && env.SourceDateEpoch.Year() != 2026 {
			t.Errorf("SOURCE_DATE_EPOCH = %s, want the Release's date", env.SourceDateEpoch)
		}
	}
}

func TestResolveMirrorRedacts(t *testing.T) {
	r := loadTestRecipe(t, t.TempDir(), "suite: bookworm\n")
	for _, m := range []string{"ftp://user:s3cret@m/debian", "ftp://s3cret@m/debian", "http://user:s3cret@m/%zz"} {
		if _, err := ResolveMirror(MirrorInputs{Flag: m}, r); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ResolveMirror(%s) = %v, want an error without the credentials", m, err)
		}
	}
}
