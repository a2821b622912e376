package bootstrap

import "github.com/krgimage/krgimage/internal/debarchive"

// The Release file and its signature are debarchive's; bootstrap names
// them as it did, for its callers.
type (
	// Release is a suite's Release file (debarchive.Release).
	Release = debarchive.Release
	// FileSum is a file's size and checksums (debarchive.FileSum).
	FileSum = debarchive.FileSum
	// Hash is one checksum (debarchive.Hash).
	Hash = debarchive.Hash
	// IndexFile is one form of a Packages index (debarchive.IndexFile).
	IndexFile = debarchive.IndexFile
	// Keyring holds the keys a Release may be signed with
	// (debarchive.Keyring).
	Keyring = debarchive.Keyring
	// VerifyOptions relax signature checks (debarchive.VerifyOptions).
	VerifyOptions = debarchive.VerifyOptions
	// Signature describes a verified signature (debarchive.Signature).
	Signature = debarchive.Signature
)

// Keyrings debootstrap checks Release files against.
const (
	DefaultKeyring = debarchive.DefaultKeyring
	RemovedKeyring = debarchive.RemovedKeyring
)

// ParseRelease reads a Release file (debarchive.ParseRelease).
func ParseRelease(b []byte) (*Release, error) { return debarchive.ParseRelease(b) }

// LoadKeyring reads a keyring file or directory (debarchive.LoadKeyring).
func LoadKeyring(path string) (*Keyring, error) { return debarchive.LoadKeyring(path) }
