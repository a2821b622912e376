package bootstrap

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/krgimage/krgimage/internal/debarchive"
)

// LoadTrust reads what o's Release is checked against: the recipe's
// keyring or Debian's (none with Insecure), and o's relaxations.
func LoadTrust(o Options, now time.Time) (debarchive.Trust, error) {
	ro := debarchive.Trust{Insecure: o.Insecure, Archived: o.Archived, Now: now}
	if o.Insecure {
		return ro, nil
	}
	k, err := loadKeyrings(o)
	if err != nil {
		return debarchive.Trust{}, err
	}
	ro.Keyring = k
	return ro, nil
}

// Relaxations lists, for a plan, each check insecure and archived relax.
// With debootstrap (native false) its own gpgv and checks decide what is
// installed; only the archived suite's Valid-Until rule is krgimage's.
func Relaxations(o Options, native bool) []string {
	var lines []string
	if o.Insecure {
		lines = append(lines, "WARNING: Release signatures are not checked (insecure: true)")
		if native {
			lines = append(lines, "insecure: files that only an MD5 or SHA-1 checksum protects are accepted")
		}
	}
	if !o.Archived {
		return lines
	}
	if native {
		lines = append(lines, "archived suite: expired signing keys are accepted",
			"archived suite: SHA-1 Release signatures are accepted",
			"archived suite: files that only an MD5 or SHA-1 checksum protects are accepted")
	}
	return append(lines, "archived suite: a Release past its Valid-Until is accepted; one the mirror serves as current is refused")
}

// FetchRelease reads and verifies a suite's Release (debarchive.Fetch)
// as the Repository the bootstrap reads its indexes from.
func FetchRelease(ctx context.Context, client *http.Client, mirror *url.URL, suite string, o debarchive.Trust, log *slog.Logger) (*Repository, error) {
	s, err := debarchive.Fetch(ctx, client, mirror, suite, o, log)
	if err != nil {
		return nil, err
	}
	return &Repository{Mirror: mirror, Suite: suite, Release: s.Release, Signature: s.Signature, ID: s.ID, fetched: s.Size}, nil
}
