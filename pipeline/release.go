package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/krgimage/krgimage/bootstrap"
	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/recipes"
)

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

// releases reads each suite's Release once per build, with
// debarchive.Fetch and the trust the bootstrap gives it: the
// recipe's keyring (or Debian's), insecure and archived. What keys the
// stage cache and dates the build is thus what a signature vouched for:
// an archive whose Release that trust cannot verify (one signed by a key
// only a later step installs) is not cached rather than keyed blindly.
type releases struct {
	recipe *recipes.Recipe
	log    *slog.Logger
	client *http.Client
	mu     sync.Mutex
	got    map[string]releaseResult
	// trust is loaded on first use, and only then can fail.
	trust    *debarchive.Trust
	trustErr error
}

type releaseResult struct {
	rel release
	err error
}

func newReleases(env *Env) *releases {
	return &releases{recipe: env.Recipe, log: env.Log, client: &http.Client{Timeout: time.Minute}, got: map[string]releaseResult{}}
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
	rel, err := r.fetch(ctx, mirror, suite, components, arch)
	if err != nil {
		err = fmt.Errorf("the Release of %s on %s: %w", suite, debarchive.RedactURL(mirror), err)
	}
	r.got[id] = releaseResult{rel, err}
	return rel, err
}

func (r *releases) fetch(ctx context.Context, mirror, suite string, components []string, arch string) (release, error) {
	trust, err := r.loadTrust()
	if err != nil {
		return release{}, err
	}
	u, err := url.Parse(strings.TrimRight(mirror, "/"))
	if err != nil {
		return release{}, errors.New("the mirror URL does not parse")
	}
	s, err := debarchive.Fetch(ctx, r.client, u, suite, trust, r.log)
	if err != nil {
		return release{}, err
	}
	return releaseDigest(s.Release, components, arch)
}

func (r *releases) loadTrust() (debarchive.Trust, error) {
	if r.trust == nil && r.trustErr == nil {
		t, err := bootstrap.LoadTrust(bootstrapOptions(r.recipe, "", ""), time.Time{})
		r.trust, r.trustErr = &t, err
	}
	return *r.trust, r.trustErr
}

// releaseDigest takes from a verified Release its Date and a digest of
// the checksums of the components' Packages indices for arch.
func releaseDigest(r *debarchive.Release, components []string, arch string) (release, error) {
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
