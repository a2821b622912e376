package bootstrap

import (
	"cmp"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/fsutil"
)

// Cache is the content-addressed store of downloaded indexes and packages
// that every build shares: a file is kept under its checksum, so a rebuild
// fetches only what changed, and two builds never disagree about a name.
type Cache struct {
	dir string
}

// NewCache returns the cache under dir (created on first use).
func NewCache(dir string) *Cache { return &Cache{dir: dir} }

// Path is where the file with checksum h lives in the cache.
func (c *Cache) Path(h debarchive.Hash) string {
	return filepath.Join(c.dir, h.Algo, h.Value[:2], h.Value)
}

func (c *Cache) partial(h debarchive.Hash) string {
	return filepath.Join(c.dir, "partial", h.Algo+"-"+h.Value)
}

func newHash(algo string) hash.Hash {
	switch algo {
	case "sha256":
		return sha256.New()
	case "sha1":
		return sha1.New()
	}
	return md5.New()
}

// check verifies that the file at path has size and checksum h.
func check(path string, size int64, h debarchive.Hash) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	hh := newHash(h.Algo)
	n, err := io.Copy(hh, f)
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(hh.Sum(nil)); n != size || got != h.Value {
		return fmt.Errorf("%w: %d bytes with %s %s, want %d bytes with %s", ErrChecksum, n, h.Algo, got, size, h.Value)
	}
	return nil
}

// lookup returns the cached file for h, verified. A cached file that no
// longer matches (a disk error, a hand edit) is removed and reported
// missing, so that it is fetched again.
func (c *Cache) lookup(size int64, h debarchive.Hash) (string, bool) {
	p := c.Path(h)
	if fi, err := os.Stat(p); err != nil || fi.Size() != size {
		return "", false
	}
	if err := check(p, size, h); err != nil {
		os.Remove(p)
		return "", false
	}
	return p, true
}

// Item is one file to fetch from the mirror.
type Item struct {
	// Path is relative to the mirror's root (pool/main/d/dpkg/...).
	Path string
	Size int64
	Hash debarchive.Hash
	// Name says what the file is in messages (dpkg 1.21.23).
	Name string
}

// Stats counts what a Fetcher did.
type Stats struct {
	// Downloaded is the bytes received over the network for indexes
	// and packages; a warm cache makes it zero.
	Downloaded int64
	// Files is how many files were downloaded, Reused how many the
	// cache already had.
	Files, Reused int
	// Metadata is the bytes of Release files, which are fetched on
	// every build to learn whether anything changed.
	Metadata int64
}

// Fetcher downloads mirror files into the cache, several at once, each
// resumed after a dropped connection and checked against its checksum.
type Fetcher struct {
	Client *http.Client
	Cache  *Cache
	Log    *slog.Logger
	// Jobs is how many downloads run at once.
	Jobs int
	// Attempts is how many times a download is tried before failing.
	Attempts int
	// Stall is how long a download may receive nothing before it is
	// abandoned and resumed.
	Stall time.Duration
	// Progress is told after each file: files done and total, bytes done
	// and total.
	Progress func(done, total int, bytes, totalBytes int64)
	// AllowWeak accepts files that only an MD5 or SHA-1 checksum
	// protects, as suites as old as lenny publish them; it is set for
	// archived suites only.
	AllowWeak bool

	downloaded, metadata atomic.Int64
	files, reused        atomic.Int64
}

// NewFetcher returns a Fetcher with the defaults a build uses.
func NewFetcher(cache *Cache, log *slog.Logger) *Fetcher {
	return &Fetcher{
		Client: &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			TLSHandshakeTimeout:   30 * time.Second,
		}},
		Cache:    cache,
		Log:      log,
		Jobs:     8,
		Attempts: 4,
		Stall:    60 * time.Second,
	}
}

// Stats returns what was fetched so far.
func (f *Fetcher) Stats() Stats {
	return Stats{Downloaded: f.downloaded.Load(), Metadata: f.metadata.Load(),
		Files: int(f.files.Load()), Reused: int(f.reused.Load())}
}

// FetchAll fetches items from mirror and returns their cache paths in the
// same order. The first failure cancels the downloads still running.
func (f *Fetcher) FetchAll(ctx context.Context, mirror *url.URL, items []Item) ([]string, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	paths := make([]string, len(items))
	var total int64
	for _, it := range items {
		total += it.Size
	}
	var (
		mu        sync.Mutex
		done      int
		doneBytes int64
		wg        sync.WaitGroup
		firstErr  error
	)
	jobs := make(chan int)
	workers := max(1, min(f.Jobs, len(items)))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				p, err := f.Fetch(ctx, mirror, items[i])
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
						cancel(err)
					}
				} else {
					paths[i] = p
					done++
					doneBytes += items[i].Size
					if f.Progress != nil {
						f.Progress(done, len(items), doneBytes, total)
					}
				}
				mu.Unlock()
			}
		}()
	}
	// Largest first: the big packages set the pace, so start them early.
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(items[b].Size, items[a].Size) })
feed:
	for _, i := range order {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return paths, nil
}

// Fetch returns the cache path of it, downloading it if the cache lacks
// it.
func (f *Fetcher) Fetch(ctx context.Context, mirror *url.URL, it Item) (string, error) {
	if n, ok := debarchive.HexLen(it.Hash.Algo); !ok || len(it.Hash.Value) != n {
		// Nothing would vouch for the file, and the cache could not
		// name it: archived and insecure relax checksums, never drop them.
		return "", fmt.Errorf("%w: %s (%s) has no checksum in the index", ErrChecksum, it.Name, it.Path)
	}
	if it.Hash.Weak() {
		if !f.AllowWeak {
			return "", fmt.Errorf("%w: %s (%s) has only a checksum of the broken %s; only an archived suite (archived: true) may rely on one",
				ErrChecksum, it.Name, it.Path, strings.ToUpper(it.Hash.Algo))
		}
		f.Log.Warn("only a weak checksum protects this file", "path", it.Path, "algorithm", it.Hash.Algo)
	}
	if p, ok := f.Cache.lookup(it.Size, it.Hash); ok {
		f.reused.Add(1)
		return p, nil
	}
	final := f.Cache.Path(it.Hash)
	part := f.Cache.partial(it.Hash)
	for _, d := range []string{filepath.Dir(final), filepath.Dir(part)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	// Builds share the cache: one downloads a file while the others
	// wait, then find it there.
	if lk, err := fsutil.WaitLock(part + ".lock"); err == nil {
		defer lk.Unlock()
		if p, ok := f.Cache.lookup(it.Size, it.Hash); ok {
			f.reused.Add(1)
			return p, nil
		}
	}
	var err error
	mismatches := 0
	for attempt := 1; attempt <= max(1, f.Attempts); attempt++ {
		if attempt > 1 {
			f.Log.Info("retrying a download", "path", it.Path, "attempt", attempt, "err", err)
		}
		if attempt > 1 && !errors.Is(err, ErrChecksum) {
			select {
			case <-time.After(time.Duration(1<<(attempt-2)) * 500 * time.Millisecond):
			case <-ctx.Done():
				return "", context.Cause(ctx)
			}
		}
		err = f.download(ctx, mirror, it, part)
		if err == nil {
			if err = check(part, it.Size, it.Hash); err == nil {
				if err := os.Rename(part, final); err != nil {
					return "", err
				}
				f.files.Add(1)
				return final, nil
			}
			// A wrong file is not resumed: it is fetched again from
			// nothing, once, in case the resumed part was the culprit.
			os.Remove(part)
			err = fmt.Errorf("%s (%s): %w", it.Name, it.Path, err)
			if mismatches++; mismatches > 1 {
				break
			}
			continue
		}
		if errors.Is(err, os.ErrNotExist) || ctx.Err() != nil {
			break
		}
	}
	return "", err
}

// download fetches it into part, resuming from what part already holds.
func (f *Fetcher) download(ctx context.Context, mirror *url.URL, it Item, part string) error {
	src := mirror.JoinPath(it.Path)
	if mirror.Scheme == "file" {
		return copyLocal(src.Path, part, it.Size)
	}
	var have int64
	if fi, err := os.Stat(part); err == nil && fi.Size() < it.Size {
		have = fi.Size()
	} else if err == nil {
		os.Remove(part)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.String(), nil)
	if err != nil {
		return err
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMirror, debarchive.Redact(src), debarchive.UnwrapURLError(err))
	}
	defer resp.Body.Close()
	flags := os.O_WRONLY | os.O_CREATE
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		flags |= os.O_APPEND
		f.Log.Debug("resuming a download", "path", it.Path, "from", have)
	case resp.StatusCode == http.StatusOK:
		flags |= os.O_TRUNC
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		os.Remove(part)
		return fmt.Errorf("%w: %s: the partial download is longer than the file", ErrMirror, debarchive.Redact(src))
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return fmt.Errorf("%s is not on the mirror (%s): %w", it.Name, debarchive.Redact(src), os.ErrNotExist)
	default:
		return fmt.Errorf("%w: GET %s: %s", ErrMirror, debarchive.Redact(src), resp.Status)
	}
	out, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return err
	}
	body := &stallReader{r: resp.Body, stall: f.Stall, cancel: cancel}
	body.arm()
	// Never read past the size the index gives: a mirror serving more
	// is serving something else.
	n, err := io.Copy(out, io.LimitReader(body, it.Size-have+1))
	body.stop()
	f.downloaded.Add(n)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			err = cause
		}
		return fmt.Errorf("%w: %s: %v", ErrMirror, debarchive.Redact(src), err)
	}
	return nil
}

// copyLocal fetches from a file: mirror, reading one byte more than the
// index promises so that a longer file fails its check.
func copyLocal(src, dst string, size int64) error {
	err := copyFile(src, dst, size+1)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s is not on the mirror: %w", src, os.ErrNotExist)
	}
	return err
}

// copyFile copies at most limit bytes of src (all when limit < 0).
func copyFile(src, dst string, limit int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	var r io.Reader = in
	if limit >= 0 {
		r = io.LimitReader(in, limit)
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var errStalled = errors.New("no data received for too long")

// stallReader cancels a download that receives nothing for too long: a
// dead connection would otherwise hold a worker until TCP gives up.
type stallReader struct {
	r      io.Reader
	stall  time.Duration
	cancel context.CancelCauseFunc
	t      *time.Timer
}

func (s *stallReader) arm() {
	if s.stall > 0 {
		s.t = time.AfterFunc(s.stall, func() { s.cancel(errStalled) })
	}
}

func (s *stallReader) stop() {
	if s.t != nil {
		s.t.Stop()
	}
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 && s.t != nil {
		s.t.Reset(s.stall)
	}
	return n, err
}
