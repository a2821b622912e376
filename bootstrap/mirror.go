package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/krgimage/krgimage/internal/debarchive"
)

// CheckMirror makes sure o's mirror serves o's suite with the wanted
// architecture and components, reading its Release as the build will:
// verified, so that a bad signature or a stale Release fails in seconds.
func CheckMirror(ctx context.Context, client *http.Client, o Options, now time.Time, log *slog.Logger) error {
	mirror, err := parseMirror(o.Mirror)
	if err != nil {
		return err
	}
	trust, err := LoadTrust(o, now)
	if err != nil {
		return err
	}
	repo, err := FetchRelease(ctx, client, mirror, o.Suite, trust, log)
	if err != nil {
		return err
	}
	rel, where := repo.Release, debarchive.Redact(mirror)
	if archs := rel.Architectures; len(archs) > 0 && o.Arch != "" && !slices.Contains(archs, o.Arch) {
		return fmt.Errorf("%w: %s on %s has no %s packages (it has %s)", ErrUnknownSuite, o.Suite, where, o.Arch, strings.Join(archs, " "))
	}
	if comps := rel.Components; len(comps) > 0 {
		for _, c := range o.Components {
			if !slices.Contains(comps, c) && !slices.Contains(comps, "updates/"+c) {
				return fmt.Errorf("%w: %s on %s has no component %s (it has %s)", ErrUnknownSuite, o.Suite, where, c, strings.Join(comps, " "))
			}
		}
	}
	return nil
}
