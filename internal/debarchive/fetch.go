package debarchive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// MaxRelease bounds an InRelease, Release or Release.gpg download; real
// ones are under 1 MiB, and a mirror serving more serves something else.
const MaxRelease = 16 << 20

// Trust says how far a Release is trusted.
type Trust struct {
	// Keyring checks the signature; nil with Insecure.
	Keyring *Keyring
	// Insecure accepts an unsigned or badly signed Release.
	Insecure bool
	// Archived accepts expired keys and SHA-1 signatures, as an archived
	// suite needs, and a Release past its Valid-Until; it refuses a
	// Release that is still current.
	Archived bool
	// Now is when keys and Valid-Until are checked (time.Now if zero).
	Now time.Time
}

// stripClearsign returns the text of a clearsigned message without
// checking anything (insecure: true).
func stripClearsign(b []byte) []byte {
	if blk, _ := clearsign.Decode(b); blk != nil {
		return blk.Plaintext
	}
	return b
}

func (o Trust) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// Signed is a suite's Release as its signature vouched for it.
type Signed struct {
	Release *Release
	// Signature is nil when the Release is not checked (Insecure).
	Signature *Signature
	// ID digests the signed file as fetched: the same ID means the same
	// indexes. Size is every byte fetched to read it.
	ID   string
	Size int64
}

// Fetch is the one way krgimage reads a suite's Release, for the
// bootstrap as for the stage cache's keys and the build's date: it
// fetches dists/SUITE/InRelease or, only where the mirror has none,
// Release and Release.gpg, and returns the Release once its signature
// and its own fields vouch for it (see vouch).
func Fetch(ctx context.Context, client *http.Client, mirror *url.URL, suite string, o Trust, log *slog.Logger) (*Signed, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := fetchSigned(ctx, client, mirror, suite, o, log)
	if err != nil {
		return nil, err
	}
	r, err := ParseRelease(s.text)
	if err != nil {
		return nil, fmt.Errorf("the Release of %s on %s: %w", suite, Redact(mirror), err)
	}
	if err := o.vouch(r, suite); err != nil {
		return nil, fmt.Errorf("%s on %s: %w", suite, Redact(mirror), err)
	}
	logTrust(log, suite, o, s.sig)
	return &Signed{Release: r, Signature: s.sig, ID: s.id, Size: s.size}, nil
}

// signedRelease is a Release's text as its signature vouched for it.
type signedRelease struct {
	text []byte
	sig  *Signature
	// id digests the signed file as fetched; size is every byte fetched.
	id   string
	size int64
}

// fetchSigned reads the InRelease, falling back to Release and
// Release.gpg only when the mirror has no InRelease at all: a bad
// signature or an unreachable mirror must not make krgimage settle for a
// weaker form the attacker may control too.
func fetchSigned(ctx context.Context, client *http.Client, mirror *url.URL, suite string, o Trust, log *slog.Logger) (*signedRelease, error) {
	dists := "dists/" + suite + "/"
	vo := VerifyOptions{Archived: o.Archived, Now: o.Now}
	in, err := getMetadata(ctx, client, mirror, dists+"InRelease")
	switch {
	case err == nil:
		s := &signedRelease{id: digest(in), size: int64(len(in))}
		if o.Insecure {
			s.text = stripClearsign(in)
		} else if s.text, s.sig, err = o.Keyring.VerifyInRelease(in, vo); err != nil {
			return nil, fmt.Errorf("%sInRelease on %s: %w", dists, Redact(mirror), err)
		}
		return s, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	log.Info("the mirror has no InRelease: reading Release and Release.gpg instead, as archived suites publish them", "suite", suite, "mirror", Redact(mirror))
	rel, err := getMetadata(ctx, client, mirror, dists+"Release")
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %sInRelease or Release; archived suites such as lenny are only on Debian's archive mirror: set the recipe's mirror, --mirror or KRGIMAGE_MIRROR",
			ErrUnknownSuite, Redact(mirror), dists)
	}
	if err != nil {
		return nil, err
	}
	s := &signedRelease{text: rel, id: digest(rel), size: int64(len(rel))}
	if o.Insecure {
		return s, nil
	}
	gpg, err := getMetadata(ctx, client, mirror, dists+"Release.gpg")
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no InRelease and its Release is unsigned (no Release.gpg); set insecure: true to accept it", ErrSignature, dists)
	}
	if err != nil {
		return nil, err
	}
	s.size += int64(len(gpg))
	if s.sig, err = o.Keyring.VerifyDetached(rel, gpg, vo); err != nil {
		return nil, fmt.Errorf("%sRelease.gpg on %s: %w", dists, Redact(mirror), err)
	}
	return s, nil
}

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// vouch checks what a good signature alone does not: that the Release is
// the suite's (a mirror can replay any Release the archive ever signed,
// another suite's or an old one) and that it is current, or, for an
// archived suite, no longer current.
func (o Trust) vouch(r *Release, suite string) error {
	if !namesSuite(r, suite) {
		return fmt.Errorf("%w: asked for %s, the signed Release is of suite %q, codename %q: the mirror serves another suite's Release",
			ErrWrongSuite, suite, r.Suite, r.Codename)
	}
	if r.ValidUntil.IsZero() {
		return o.vouchUndated(r, suite)
	}
	until := r.ValidUntil.UTC().Format(time.RFC1123)
	expired := o.now().After(r.ValidUntil)
	switch {
	case expired && !o.Archived:
		return fmt.Errorf("%w: Release of %s expired on %s; set archived: true in the recipe for an archived suite (else the mirror is a stale copy)",
			ErrReleaseExpired, suite, until)
	case !expired && o.Archived:
		return fmt.Errorf("%w: the mirror serves %s as current (its Release is valid until %s); %s",
			ErrNotArchived, suite, until, archivedIsFor)
	}
	return nil
}

// currentWithin is how recent a Release without Valid-Until must be for
// its suite to count as current. Debian's main archive publishes no
// Valid-Until, but it signs a new Release for every suite it still
// updates at least at each point release, a few times a year; a suite
// whose Release is a year old is one the archive no longer updates.
const currentWithin = 365 * 24 * time.Hour

const archivedIsFor = "archived: true, which accepts expired keys, SHA-1 signatures and weak checksums, is only for a suite the archive no longer updates: remove it"

// vouchUndated refuses archived: true for a suite whose Release has no
// Valid-Until but is recent: it is being updated, and relaxing the checks
// for it would accept what its current keys refuse.
func (o Trust) vouchUndated(r *Release, suite string) error {
	if !o.Archived || r.Date.IsZero() || o.now().Sub(r.Date) > currentWithin {
		return nil
	}
	return fmt.Errorf("%w: the mirror serves %s as current (its Release is dated %s, less than a year ago); %s",
		ErrNotArchived, suite, r.Date.UTC().Format(time.RFC1123), archivedIsFor)
}

// namesSuite reports whether r is the Release of suite, by its Suite or
// Codename field, as apt matches them. The security archive of lenny's
// time is asked for as lenny/updates but names itself lenny.
func namesSuite(r *Release, suite string) bool {
	for _, s := range []string{suite, strings.TrimSuffix(suite, "/updates")} {
		if s != "" && (r.Suite == s || r.Codename == s || strings.TrimSuffix(r.Codename, "/updates") == s) {
			return true
		}
	}
	return false
}

func logTrust(log *slog.Logger, suite string, o Trust, sig *Signature) {
	switch {
	case o.Insecure:
		log.Warn("the Release signature is not checked (insecure: true)", "suite", suite)
	case sig.Expired:
		log.Warn("the Release is signed by an expired key, accepted for an archived suite", "suite", suite, "key", sig.Signer)
	default:
		log.Info("valid Release signature", "suite", suite, "key", sig.Signer)
	}
	if sig != nil && sig.Weak {
		log.Warn("the Release signature uses SHA-1, accepted for an archived suite", "suite", suite)
	}
}

// getMetadata downloads a small file that has no known checksum (a
// Release or its signature); it reports os.ErrNotExist for a missing one,
// and an error, never a truncated file, for one over MaxRelease.
func getMetadata(ctx context.Context, client *http.Client, base *url.URL, rel string) ([]byte, error) {
	switch base.Scheme {
	case "file":
		return readMetadata(filepath.Join(base.Path, rel))
	case "http", "https":
	default:
		return nil, fmt.Errorf("%w: unsupported URL scheme %q (http, https or file)", ErrMirror, base.Scheme)
	}
	ref := base.JoinPath(rel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMirror, Redact(ref), UnwrapURLError(err))
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMirror, Redact(base), UnwrapURLError(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, fmt.Errorf("%s: %w", Redact(ref), os.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: GET %s: %s", ErrMirror, Redact(ref), resp.Status)
	}
	b, err := readAtMost(resp.Body, Redact(ref))
	if err != nil {
		return nil, err
	}
	return b, nil
}

func readMetadata(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMirror, err)
	}
	defer f.Close()
	return readAtMost(f, path)
}

func readAtMost(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxRelease+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrMirror, name, err)
	}
	if len(b) > MaxRelease {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes, which no Release is", ErrMalformed, name, MaxRelease)
	}
	return b, nil
}

// UnwrapURLError drops the *url.Error around a request's error: it
// quotes the URL unredacted.
func UnwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

var userinfo = regexp.MustCompile(`//[^/?#]*@`)

// ErrMirrorURL: a mirror is not an http, https or file URL.
var ErrMirrorURL = errors.New("expected an http, https or file URL")

// ParseMirror reads a mirror's URL, without the trailing slashes: the
// schemes the fetcher and debootstrap both read, with a host unless it
// is a file URL.
func ParseMirror(s string) (*url.URL, error) {
	s = strings.TrimRight(s, "/")
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
		return nil, ErrMirrorURL
	}
	return u, nil
}

// RedactURL returns the URL s for messages: a mirror URL may carry
// credentials, a password or a token given as the user name, so all of
// its user info is hidden, even when s does not parse.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return Redact(u)
	}
	return userinfo.ReplaceAllString(s, "//xxxxx@")
}

// Redact is u without its user info, which url.URL.Redacted keeps when
// there is no password.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = url.User("xxxxx")
	return c.String()
}
