package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"github.com/krgimage/krgimage/bootstrap"
)

// maxReleaseSize bounds a Release file read into memory (bookworm's is
// about 150 KiB).
const maxReleaseSize = 16 << 20

// release is what a build takes from a suite's Release file: its date, the
// default SOURCE_DATE_EPOCH, and a digest of its package indices, which
// stands for the package versions apt resolves against it.
type release struct {
	Date time.Time
	// Indices digests the checksums the Release gives for the
	// components' Packages indices for the architecture: it changes when
	// a package does, not when the file is merely signed again.
	Indices string
}

// releases fetches each suite's Release file once per build.
type releases struct {
	client *http.Client
	mu     sync.Mutex
	got    map[string]releaseResult
}

type releaseResult struct {
	rel release
	err error
}

func newReleases() *releases {
	return &releases{client: &http.Client{Timeout: time.Minute}, got: map[string]releaseResult{}}
}

// get returns the Release of suite on mirror, for the components and the
// architecture the image uses.
func (r *releases) get(ctx context.Context, mirror, suite string, components []string, arch string) (release, error) {
	id := strings.Join(append([]string{mirror, suite, arch}, components...), "\x00")
	r.mu.Lock()
	defer r.mu.Unlock()
	if res, ok := r.got[id]; ok {
		return res.rel, res.err
	}
	b, err := r.fetch(ctx, mirror, suite)
	var rel release
	if err == nil {
		rel, err = parseRelease(b, components, arch)
	}
	if err != nil {
		err = fmt.Errorf("the Release file of %s on %s: %w", suite, mirror, err)
	}
	r.got[id] = releaseResult{rel, err}
	return rel, err
}

// fetch reads dists/SUITE/InRelease, or Release where the mirror has no
// InRelease (archived suites). The signature is not checked: the file only
// keys the cache and dates the build; the bootstrap checks what it installs.
func (r *releases) fetch(ctx context.Context, mirror, suite string) ([]byte, error) {
	u, err := url.Parse(strings.TrimRight(mirror, "/"))
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range []string{"InRelease", "Release"} {
		var b []byte
		var err error
		if u.Scheme == "file" {
			b, err = readLimited(filepath.Join(u.Path, "dists", suite, name))
		} else {
			b, err = r.httpGet(ctx, u.JoinPath("dists", suite, name).String())
		}
		if err == nil {
			return b, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxReleaseSize))
}

func (r *releases) httpGet(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxReleaseSize))
}

// parseRelease reads a Release file (an InRelease's signature is not
// checked, see fetch) with the bootstrap's parser: its Date, and a digest
// of the checksums of the components' Packages indices for arch.
func parseRelease(b []byte, components []string, arch string) (release, error) {
	if blk, _ := clearsign.Decode(b); blk != nil {
		b = blk.Plaintext
	}
	r, err := bootstrap.ParseRelease(b)
	if err != nil {
		return release{}, err
	}
	if r.Date.IsZero() {
		return release{}, errors.New("it has no Date field")
	}
	var lines []string
	for _, c := range components {
		files, err := r.PackagesIndexes(c, arch)
		if err != nil {
			return release{}, err
		}
		for _, f := range files {
			h, _ := f.Sum.Best()
			lines = append(lines, h.String()+" "+f.Path)
		}
	}
	slices.Sort(lines)
	sum := sha256.New()
	for _, l := range lines {
		fmt.Fprintln(sum, l)
	}
	return release{Date: r.Date, Indices: hex.EncodeToString(sum.Sum(nil))}, nil
}
