package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sync"

	"github.com/krgimage/krgimage/internal/debarchive"
)

// Repository is one suite of a mirror, its Release verified.
type Repository struct {
	Mirror  *url.URL
	Suite   string
	Release *debarchive.Release
	// Signature is nil when the recipe said insecure: true.
	Signature *debarchive.Signature
	// ID is the SHA-256 of the signed Release as fetched: the same ID
	// means the same indexes.
	ID string
	// fetched is the bytes downloaded to read the Release.
	fetched int64
}

// Packages downloads and parses the Packages index of each component for
// arch, checked against the Release. Indexes that only have weak
// checksums are used, and logged.
func (r *Repository) Packages(ctx context.Context, f *Fetcher, components []string, arch string) ([]*debarchive.Package, error) {
	// Each component's packages in its own slot, joined in the recipe's
	// order: which download finishes first must not change the result.
	res := make([][]*debarchive.Package, len(components))
	errs := make([]error, len(components))
	var wg sync.WaitGroup
	for i, comp := range components {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = r.componentPackages(ctx, f, comp, arch)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.Concat(res...), nil
}

// componentPackages downloads an index through the Fetcher, then hands
// the file to debarchive to read. The download stays here, not in
// debarchive: the Fetcher and its content-addressed cache are
// bootstrap's, shared with the .debs, and debarchive needs no cache to
// read a file.
func (r *Repository) componentPackages(ctx context.Context, f *Fetcher, comp, arch string) ([]*debarchive.Package, error) {
	files, err := r.Release.PackagesIndexes(comp, arch)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, idx := range files {
		h, _ := idx.Sum.Best()
		path, err := f.Fetch(ctx, r.Mirror, Item{Path: "dists/" + r.Suite + "/" + idx.Path, Size: idx.Sum.Size, Hash: h, Name: idx.Path})
		if errors.Is(err, os.ErrNotExist) {
			lastErr = err
			continue // listed but not served: try the next form
		}
		if err != nil {
			return nil, err
		}

		pkgs, err := debarchive.ParsePackagesFile(path, idx.Path, comp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", idx.Path, err)
		}
		return pkgs, nil
	}
	return nil, fmt.Errorf("%w: none of the %s/binary-%s Packages indexes the Release lists is on the mirror: %v", ErrUnknownSuite, comp, arch, lastErr)
}
