package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxRelease bounds a Release file download; real ones are under 1 MiB.
const maxRelease = 16 << 20

// CheckMirror makes sure mirror serves suite with the wanted architecture
// and components, reading its Release file (InRelease first, as APT does).
func CheckMirror(ctx context.Context, client *http.Client, mirror, suite, arch string, components []string) error {
	u, err := url.Parse(mirror)
	if err != nil || mirror == "" {
		return fmt.Errorf("%w: invalid mirror URL %q", ErrMirror, mirror)
	}
	var body []byte
	var lastErr error
	for _, name := range []string{"InRelease", "Release"} {
		body, lastErr = fetch(ctx, client, u, "dists/"+suite+"/"+name)
		if lastErr == nil {
			break
		}
		if !errors.Is(lastErr, os.ErrNotExist) {
			return lastErr
		}
	}
	if lastErr != nil {
		return fmt.Errorf("%w: %s has no dists/%s/InRelease or Release; archived suites such as lenny are only on Debian's archive mirror: set the recipe's mirror, --mirror or KRGIMAGE_MIRROR", ErrUnknownSuite, mirror, suite)
	}
	rel, err := ParseRelease(stripClearsign(body))
	if err != nil {
		return fmt.Errorf("%s on %s: %w", suite, mirror, err)
	}
	if archs := rel.Architectures; len(archs) > 0 && arch != "" && !slices.Contains(archs, arch) {
		return fmt.Errorf("%w: %s on %s has no %s packages (it has %s)", ErrUnknownSuite, suite, mirror, arch, strings.Join(archs, " "))
	}
	if comps := rel.Components; len(comps) > 0 {
		for _, c := range components {
			if !slices.Contains(comps, c) && !slices.Contains(comps, "updates/"+c) {
				return fmt.Errorf("%w: %s on %s has no component %s (it has %s)", ErrUnknownSuite, suite, mirror, c, strings.Join(comps, " "))
			}
		}
	}
	return nil
}

func fetch(ctx context.Context, client *http.Client, base *url.URL, rel string) ([]byte, error) {
	switch base.Scheme {
	case "file":
		b, err := os.ReadFile(filepath.Join(base.Path, rel))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %v", ErrMirror, err)
		}
		return b, err
	case "http", "https":
	default:
		return nil, fmt.Errorf("%w: unsupported URL scheme %q (http, https or file)", ErrMirror, base.Scheme)
	}
	ref := base.JoinPath(rel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMirror, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMirror, base.Redacted(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, os.ErrNotExist
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: GET %s: %s", ErrMirror, ref.Redacted(), resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRelease+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrMirror, ref.Redacted(), err)
	}
	if len(b) > maxRelease {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrMirror, ref.Redacted(), maxRelease)
	}
	return b, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
