package bootstrap

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krgimage/krgimage/bootstrap/bootstraptest"
	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/run"
)

// fetchFixture fetches suite's Release from mirror with the keyring of
// repo and the relaxations given, logging to rec.
func fetchFixture(t *testing.T, repo *bootstraptest.Repo, mirror, suite string, archived bool, rec *logRecorder) (*Repository, error) {
	t.Helper()
	o := testOptions(mirror, repo.Keyring, "")
	o.Archived = archived
	trust, err := LoadTrust(o, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(mirror)
	if err != nil {
		t.Fatal(err)
	}
	if rec == nil {
		rec = &logRecorder{}
	}
	return FetchRelease(t.Context(), http.DefaultClient, u, suite, trust, slog.New(rec))
}

func TestFetchReleaseSuite(t *testing.T) {
	// stable is bookworm: either name finds it.
	stable := bootstraptest.NewRepo(t, bootstraptest.Spec{Suite: "stable", Codename: "bookworm"})
	os.Symlink("stable", filepath.Join(stable.Dir, "dists", "bookworm"))
	mirror := stable.Serve(t)
	for _, suite := range []string{"stable", "bookworm"} {
		if _, err := fetchFixture(t, stable, mirror, suite, false, nil); err != nil {
			t.Errorf("%s: %v", suite, err)
		}
	}

	// A mirror serving bullseye's signed Release as bookworm's.
	replay := bootstraptest.NewRepo(t, bootstraptest.Spec{Suite: "oldstable", Codename: "bullseye"})
	if err := os.Rename(replay.Dists(), filepath.Join(replay.Dir, "dists", "bookworm")); err != nil {
		t.Fatal(err)
	}
	_, err := fetchFixture(t, replay, replay.Serve(t), "bookworm", false, nil)
	if !errors.Is(err, ErrWrongSuite) {
		t.Fatalf("a replayed Release of another suite: %v, want ErrWrongSuite", err)
	}
	for _, want := range []string{"bookworm", `suite "oldstable"`, `codename "bullseye"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestFetchReleaseValidUntil(t *testing.T) {
	tests := []struct {
		name       string
		validUntil time.Time
		date       time.Time
		archived   bool
		want       error
		text       string
	}{
		{name: "current", validUntil: time.Now().Add(24 * time.Hour)},
		{name: "no Valid-Until"},
		{name: "no Valid-Until, recent", date: time.Now().Add(-30 * 24 * time.Hour)},
		{name: "no Valid-Until, years old, archived", archived: true},
		{name: "no Valid-Until, recent, archived", date: time.Now().Add(-30 * 24 * time.Hour), archived: true, want: ErrNotArchived, text: "less than a year ago"},
		{name: "expired", validUntil: time.Now().Add(-time.Hour), want: ErrReleaseExpired, text: "Release of bookworm expired on"},
		{name: "expired, archived", validUntil: time.Now().Add(-time.Hour), archived: true},
		{name: "current, archived", validUntil: time.Now().Add(24 * time.Hour), archived: true, want: ErrNotArchived, text: "serves bookworm as current"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := bootstraptest.NewRepo(t, bootstraptest.Spec{ValidUntil: tt.validUntil, Date: tt.date})
			_, err := fetchFixture(t, repo, repo.Serve(t), "bookworm", tt.archived, nil)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("got %v, want %v saying %q", err, tt.want, tt.text)
			}
			if !strings.Contains(err.Error(), "archived: true") {
				t.Errorf("error %q does not say what archived: true is for", err)
			}
		})
	}
}

// countingServer serves dir, answering the paths in override itself,
// and counts the requests by path.
type countingServer struct {
	mu   sync.Mutex
	hits map[string]int
}

func (c *countingServer) serve(t *testing.T, dir string, override map[string]http.HandlerFunc) string {
	c.hits = map[string]int{}
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.hits[r.URL.Path]++
		c.mu.Unlock()
		if h, ok := override[r.URL.Path]; ok {
			h(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (c *countingServer) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[path]
}

func TestFetchReleaseFallback(t *testing.T) {
	// lenny's layout: no InRelease, Release and Release.gpg.
	lenny := bootstraptest.NewRepo(t, bootstraptest.Spec{Suite: "lenny", Style: bootstraptest.Lenny})
	var c countingServer
	rec := &logRecorder{}
	if _, err := fetchFixture(t, lenny, c.serve(t, lenny.Dir, nil), "lenny", false, rec); err != nil {
		t.Fatal(err)
	}
	if !rec.has("INFO the mirror has no InRelease: reading Release and Release.gpg") {
		t.Errorf("the fall-back to Release is not logged:\n%s", strings.Join(rec.recs, "\n"))
	}

	// Any other answer for InRelease is an error, never a reason to try
	// the weaker form.
	other, err := bootstraptest.NewKey("someone else", time.Now().Add(-time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	forged := bootstraptest.NewRepo(t, bootstraptest.Spec{Suite: "lenny", Signer: other})
	forgedIn, err := os.ReadFile(filepath.Join(forged.Dists(), "InRelease"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"server error", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "busy", http.StatusServiceUnavailable) }, ErrMirror},
		{"forbidden", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusForbidden) }, ErrMirror},
		{"signed by an unknown key", func(w http.ResponseWriter, _ *http.Request) { w.Write(forgedIn) }, ErrUnknownKey},
		{"not signed", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("Suite: lenny\n")) }, ErrSignature},
		{"too large", func(w http.ResponseWriter, _ *http.Request) {
			w.Write(bytes.Repeat([]byte("x"), debarchive.MaxRelease+1))
		}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c countingServer
			rec := &logRecorder{}
			mirror := c.serve(t, lenny.Dir, map[string]http.HandlerFunc{"/dists/lenny/InRelease": tt.handler})
			_, err := fetchFixture(t, lenny, mirror, "lenny", false, rec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if n := c.count("/dists/lenny/Release") + c.count("/dists/lenny/Release.gpg"); n != 0 || rec.has("no InRelease") {
				t.Errorf("fell back to Release (%d requests) after InRelease failed: %v", n, err)
			}
		})
	}
}

func TestFetchReleaseFileMirror(t *testing.T) {
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{})
	if _, err := fetchFixture(t, repo, "file://"+repo.Dir, "bookworm", false, nil); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(repo.Dists(), "InRelease")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), debarchive.MaxRelease+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fetchFixture(t, repo, "file://"+repo.Dir, "bookworm", false, nil); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("an oversized InRelease: %v, want ErrMalformed", err)
	}
}

func TestFetchReleaseRedactsCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "busy", http.StatusInternalServerError)
	}))
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, base := range []string{srv.URL, closed.URL} {
		for _, cred := range []string{"user:s3cret@", "s3cret@"} {
			mirror := strings.Replace(base, "//", "//"+cred, 1) + "/debian"
			u, _ := url.Parse(mirror)
			_, err := FetchRelease(t.Context(), srv.Client(), u, "bookworm", debarchive.Trust{Insecure: true}, slog.New(&logRecorder{}))
			if !errors.Is(err, ErrMirror) {
				t.Fatalf("%s: %v, want ErrMirror", mirror, err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the credentials: %v", err)
			}
		}
	}
	srv.Close()
	for in, want := range map[string]string{
		"http://user:s3cret@m/debian":  "http://xxxxx@m/debian",
		"https://s3cret@m/debian":      "https://xxxxx@m/debian",
		"http://user:s3cret@m/%zz":     "http://xxxxx@m/%zz",
		"http://m/debian":              "http://m/debian",
		"file:///srv/mirror/s3cret@/x": "file:///srv/mirror/s3cret@/x",
	} {
		if got := debarchive.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := parseMirror("http://user:s3cret@m/%zz"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("parseMirror() = %v", err)
	}
}

func TestFetchWithoutChecksum(t *testing.T) {
	f := NewFetcher(NewCache(t.TempDir()), slog.New(&logRecorder{}))
	f.AllowWeak = true
	_, err := f.Fetch(t.Context(), &url.URL{Scheme: "file", Path: t.TempDir()}, Item{Path: "pool/a.deb", Size: 1, Name: "a 1"})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "no checksum") {
		t.Errorf("Fetch() without a checksum = %v, want ErrChecksum", err)
	}
}

func TestNativeNoChecksum(t *testing.T) {
	// An index whose gpgv has no checksum at all: archived and insecure
	// accept weak checksums, not none.
	for _, o := range []struct{ archived, insecure bool }{{archived: true}, {insecure: true}} {
		repo := bootstraptest.NewRepo(t, bootstraptest.Spec{Debs: fixtureDebs(), NoSums: []string{"gpgv"}})
		opts := testOptions(repo.Serve(t), repo.Keyring, filepath.Join(t.TempDir(), "root"))
		opts.Archived, opts.Insecure = o.archived, o.insecure
		n, _, _ := testNative(t, t.TempDir(), nil)
		_, err := n.Run(t.Context(), opts, task())
		if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "gpgv 2.2.40") {
			t.Errorf("%+v: Run() = %v, want ErrChecksum naming gpgv", o, err)
		}
	}
}

func TestDebootstrapRedactsMirror(t *testing.T) {
	// The command line krgimage logs and quotes; what debootstrap itself
	// prints is its own.
	bin := fakeDebootstrap(t, "echo \"E: cannot reach the mirror\" >&2\nexit 1\n")
	rec := &logRecorder{}
	log := slog.New(rec)
	d := &Debootstrap{Runner: run.New(log), Log: log, Binary: bin, Host: fakeHost{}}
	o := Options{Suite: "bookworm", Target: filepath.Join(t.TempDir(), "root"), Mirror: "http://user:s3cret@m/debian"}
	err := d.Run(t.Context(), o, task())
	if err == nil || strings.Contains(err.Error(), "s3cret") || rec.has("s3cret") {
		t.Errorf("Run() = %v, log:\n%s\nwant an error that hides the credentials", err, strings.Join(rec.recs, "\n"))
	}
	if !strings.Contains(err.Error(), "http://xxxxx@m/debian") {
		t.Errorf("Run() = %v, want the redacted mirror in the command", err)
	}
}
