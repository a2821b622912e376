// Package debarchive reads what a Debian archive publishes about a suite:
// it fetches its Release file (Fetch), checks the OpenPGP signature that
// vouches for it and that it is the suite's and current, and parses the
// checksums of the indices it lists. It knows nothing of recipes;
// bootstrap reads Release files through it.
package debarchive

import "errors"

// Errors callers may branch on; bootstrap exports the same values.
var (
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
