package snapshot

import "errors"

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrUnsafePath is returned when an archive entry would write outside
	// the root or through a link: "..", an absolute name, a path through a
	// symlink or a non-directory, a hardlink to a name outside the root or
	// not an earlier entry, or a duplicate that would turn a directory into
	// something else. A symlink's target is never a reason: symlinks are
	// data, restored verbatim wherever they point.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrCorrupt is returned for an archive that cannot be read to its end:
	// a damaged or truncated compressed stream, a bad tar header, a missing
	// end-of-archive marker, or entries that disagree with the manifest.
	ErrCorrupt = errors.New("corrupt archive")
	// ErrChecksum is returned when an archive's SHA-256 differs from its
	// .sha256 sidecar.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrMismatch is returned by Verify when a tree or an archive differs
	// from the manifest; the report lists every difference.
	ErrMismatch = errors.New("differs from the manifest")
	// ErrNotEmpty is returned by Restore when the target exists and is not
	// empty, and Force is not set.
	ErrNotEmpty = errors.New("target exists and is not empty")
	// ErrChanged is returned by Write when a file changes between the pass
	// that hashes it and the pass that archives it.
	ErrChanged = errors.New("file changed while being archived")
)
