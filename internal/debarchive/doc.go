// Package debarchive is krgimage's one view of a Debian archive: what it
// publishes about a suite and how APT is told where to find it.
//
// Release files: Fetch reads a suite's InRelease (or Release and
// Release.gpg), checks the OpenPGP signature that vouches for it and that
// it is the suite's and current, and ParseRelease reads the checksums of
// the indices it lists.
//
// Packages indices: ParsePackages reads one into Package stanzas, and
// ParsePackagesFile decompresses one (gzip, xz or bzip2, as its name in
// the Release says) as it reads it. Downloading them is the caller's, so
// that the one cache that holds them is the caller's too.
//
// Source lists: Entry is one APT source, read from and written to both
// formats APT knows: the one-line sources.list format (the only one
// lenny's APT reads) and the deb822 *.sources format of current
// releases. krgimage reads the host's lists to find its Debian mirror, so
// that no mirror host name needs to be written into a recipe, checks and
// keys a recipe's source lines with them, and writes the image's own.
//
// The security suite: SecuritySuite names a release's security suite
// (SUITE/updates before bullseye, then SUITE-security), and
// IsSecuritySuite recognises either form.
//
// It knows nothing of recipes.
package debarchive

import "errors"

// Errors callers may branch on; bootstrap exports those of reading a
// Release as the same values.
var (
	// ErrSyntax: an APT source entry is malformed.
	ErrSyntax = errors.New("malformed APT source")
	// ErrUnknownSuite: the suite, or the index asked for, is not on the
	// mirror.
	ErrUnknownSuite = errors.New("suite not on mirror")
	// ErrMalformed: a Release, Packages index or .deb cannot be read.
	ErrMalformed = errors.New("malformed repository file")
	// ErrSignature: the Release is unsigned or its signature is wrong.
	ErrSignature = errors.New("bad release signature")
	// ErrUnknownKey: the Release is signed, but by no key of the keyring.
	ErrUnknownKey = errors.New("release signed by an unknown key")
	// ErrKeyExpired: the signing key has expired and the suite is not
	// marked archived.
	ErrKeyExpired = errors.New("release signed by an expired key")
	// ErrMirror: the mirror cannot be reached or answers with an error.
	ErrMirror = errors.New("mirror unreachable")
	// ErrWrongSuite: the signed Release is another suite's, which a
	// mirror replaying an old or a different Release serves.
	ErrWrongSuite = errors.New("release of another suite")
	// ErrReleaseExpired: the Release is past its Valid-Until and the
	// suite is not marked archived.
	ErrReleaseExpired = errors.New("release expired")
	// ErrNotArchived: the suite is marked archived, but the mirror
	// serves it as current.
	ErrNotArchived = errors.New("suite is not archived")
)
