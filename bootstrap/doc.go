// Package bootstrap creates an image's base Debian system, in one of two
// ways.
//
// Debootstrap drives the real debootstrap, checking first, in seconds,
// everything that would otherwise make it fail minutes later: root, the
// tools, an empty target, a reachable mirror that carries the suite,
// components and architecture, and a host able to run the target's
// binaries.
//
// Native is krgimage's own bootstrapper, built to give the same system as
// debootstrap in a fraction of the time: it verifies the suite's Release
// with OpenPGP, resolves the package set with debootstrap's rules,
// downloads every package in parallel into a content-addressed cache,
// extracts the essential packages itself and then runs dpkg inside the
// target as few times as the packages' Pre-Depends allow. A lockfile pins
// every package to a version and checksum.
package bootstrap

import (
	"errors"

	"github.com/krgimage/krgimage/internal/debarchive"
)

// Errors callers may branch on. Those of reading a Release are
// debarchive's, the same values.
var (
	ErrNotRoot        = errors.New("not running as root")
	ErrMissingTool    = errors.New("missing tool")
	ErrTargetNotEmpty = errors.New("target directory is not empty")
	ErrMirror         = debarchive.ErrMirror
	ErrUnknownSuite   = debarchive.ErrUnknownSuite
	ErrArch           = errors.New("architecture not runnable on this host")

	// ErrMalformed: a Release, Packages index or .deb cannot be read.
	ErrMalformed = debarchive.ErrMalformed
	// ErrSignature: the Release is unsigned or its signature is wrong.
	ErrSignature = debarchive.ErrSignature
	// ErrUnknownKey: the Release is signed, but by no key of the keyring.
	ErrUnknownKey = debarchive.ErrUnknownKey
	// ErrKeyExpired: the signing key has expired and the suite is not
	// marked archived.
	ErrKeyExpired = debarchive.ErrKeyExpired
	// ErrWrongSuite: the signed Release is another suite's, which a
	// mirror replaying an old or a different Release serves.
	ErrWrongSuite = debarchive.ErrWrongSuite
	// ErrReleaseExpired: the Release is past its Valid-Until and the
	// suite is not marked archived.
	ErrReleaseExpired = debarchive.ErrReleaseExpired
	// ErrNotArchived: the suite is marked archived, but the mirror
	// serves it as current.
	ErrNotArchived = debarchive.ErrNotArchived
	// ErrChecksum: a downloaded file does not match its checksum.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrNoPackage: a package asked for is not in the suite.
	ErrNoPackage = errors.New("no such package")
	// ErrUnsatisfiable: a dependency cannot be satisfied.
	ErrUnsatisfiable = errors.New("unsatisfiable dependency")
	// ErrLockMismatch: the lockfile was made for another suite,
	// architecture or package selection, or pins a file the mirror no
	// longer has.
	ErrLockMismatch = errors.New("lockfile does not match")
)
