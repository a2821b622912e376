package bootstrap

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/logging"
)

func item(name string, body []byte) Item {
	s := sha256.Sum256(body)
	return Item{Path: "pool/" + name, Size: int64(len(body)), Hash: debarchive.Hash{Algo: "sha256", Value: hex.EncodeToString(s[:])}, Name: name}
}

func testFetcher(t *testing.T) *Fetcher {
	f := NewFetcher(NewCache(t.TempDir()), logging.Discard())
	f.Stall = 5 * time.Second
	return f
}

func TestFetchResume(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 50000)
	var requests, ranges atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			// The connection dies halfway through the first download.
			w.Header().Set("Content-Length", "500000")
			w.WriteHeader(http.StatusOK)
			w.Write(body[:200000])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		if r.Header.Get("Range") != "" {
			ranges.Add(1)
		}
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	f := testFetcher(t)
	u, _ := url.Parse(srv.URL)
	p, err := f.Fetch(t.Context(), u, item("big.deb", body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got, body) {
		t.Error("the resumed file differs")
	}
	if ranges.Load() != 1 {
		t.Errorf("%d range requests, want the second one to resume", ranges.Load())
	}
	if s := f.Stats(); s.Downloaded != int64(len(body)) || s.Files != 1 {
		t.Errorf("stats %+v: want each byte downloaded once", s)
	}
	// Cached now: no request at all.
	before := requests.Load()
	if _, err := f.Fetch(t.Context(), u, item("big.deb", body)); err != nil || requests.Load() != before {
		t.Errorf("a cached file was fetched again (%v)", err)
	}
}

func TestFetchErrors(t *testing.T) {
	good := []byte("the real package")
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch r.URL.Path {
		case "/pool/evil.deb":
			w.Write([]byte("a different file"))
		case "/pool/broken.deb":
			http.Error(w, "oops", http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	tests := []struct {
		name     string
		path     string
		want     error
		requests int32
	}{
		{"tampered", "evil.deb", ErrChecksum, 2},
		{"missing", "gone.deb", os.ErrNotExist, 1},
		{"server error", "broken.deb", ErrMirror, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests.Store(0)
			f := testFetcher(t)
			f.Attempts = 2
			_, err := f.Fetch(t.Context(), u, item(tt.path, good))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("Fetch() = %v, want %v naming %s", err, tt.want, tt.path)
			}
			if requests.Load() != tt.requests {
				t.Errorf("%d requests, want %d", requests.Load(), tt.requests)
			}
			if _, err := os.Stat(f.Cache.Path(item(tt.path, good).Hash)); !errors.Is(err, os.ErrNotExist) {
				t.Error("a failed download is in the cache")
			}
		})
	}
}

func TestFetchAllFileMirror(t *testing.T) {
	dir := t.TempDir()
	var items []Item
	for _, name := range []string{"a.deb", "b.deb", "c.deb"} {
		body := []byte(strings.Repeat(name, 1000))
		os.MkdirAll(filepath.Join(dir, "pool"), 0o755)
		os.WriteFile(filepath.Join(dir, "pool", name), body, 0o644)
		items = append(items, item(name, body))
	}
	f := testFetcher(t)
	var done int
	f.Progress = func(n, total int, bytes, totalBytes int64) { done = n }
	paths, err := f.FetchAll(t.Context(), &url.URL{Scheme: "file", Path: dir}, items)
	if err != nil {
		t.Fatal(err)
	}
	if done != 3 || len(paths) != 3 || !strings.HasSuffix(paths[1], items[1].Hash.Value) {
		t.Errorf("FetchAll = %v (progress %d)", paths, done)
	}
	// A cached file damaged on disk is noticed and fetched again.
	os.WriteFile(paths[0], []byte("rot"), 0o644)
	paths2, err := f.FetchAll(t.Context(), &url.URL{Scheme: "file", Path: dir}, items)
	if err != nil || paths2[0] != paths[0] || f.Stats().Files != 4 || f.Stats().Reused != 2 {
		t.Errorf("refetch: %v, %+v", err, f.Stats())
	}
	if err := check(paths2[0], items[0].Size, items[0].Hash); err != nil {
		t.Error(err)
	}
	// One failure fails the whole batch.
	items = append(items, item("missing.deb", []byte("x")))
	if _, err := f.FetchAll(t.Context(), &url.URL{Scheme: "file", Path: dir}, items); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FetchAll with a missing file = %v", err)
	}
}

func TestFetchSharedCache(t *testing.T) {
	body := []byte(strings.Repeat("shared", 10000))
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		time.Sleep(100 * time.Millisecond)
		w.Write(body)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	cache := NewCache(t.TempDir())
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			// Two builds at once, one cache.
			f := NewFetcher(cache, logging.Discard())
			_, err := f.Fetch(t.Context(), u, item("shared.deb", body))
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if gets.Load() != 1 {
		t.Errorf("%d downloads of one file, want 1", gets.Load())
	}
}
