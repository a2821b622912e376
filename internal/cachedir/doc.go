// Package cachedir opens krgimage's cache directories only where nobody
// but their owner can have put what is in them, and keeps a ledger of what
// was stored there.
//
// krgimage runs as root and restores whole image roots, /etc/shadow and
// setuid binaries included, from its cache: a cache another user can write
// to, or swap for one of theirs by renaming a directory above it, would
// hand them the images. Open and Check therefore accept a directory only
// when it is the effective user's and no one else can write it, and when
// every directory above it is root's or the user's and writable by no one
// else, unless sticky like /tmp (where others cannot rename what is ours);
// a cache inside such a shared directory must be private to the user.
// Symbolic links are followed, and each one must belong to root or the
// user (the cache directory's own to the user).
//
// A Ledger, a directory of small records only the user can have written,
// holds the SHA-256 of each thing stored: an entry or memo is used only
// when its record exists and matches, so one that was rewritten in place,
// checksum sidecar and all, is refused.
package cachedir
