// Package stagecache keeps image roots between builds so that a rebuild
// redoes only what changed.
//
// Each stage of a build has a key: a SHA-256 over everything its result
// depends on (see Key), the previous stage's key among them, so that a
// change anywhere invalidates every stage after it. An entry is a snapshot
// (package snapshot) of the image root as it was after the stage, with a
// meta.json; it lives in a directory named by the key.
//
// # Safety
//
// Entries are written into a temporary directory and renamed into place, so
// a reader sees a complete entry or none; when two builds write one key at
// once, the first rename wins and the other build drops its copy. An entry
// whose archive fails its checksum or manifest is removed and reported as
// ErrCorrupt, never used. Builds hold a shared lock on the store for as
// long as they use it; Prune takes it exclusively, so it never removes an
// entry a running build is restoring or writing.
//
// The store is opened through package cachedir: only in a directory that
// its user alone (and root) can write or swap. Each entry's meta.json is
// recorded in the store's ledger (a "ledger" directory in it, see
// cachedir.Ledger) when the entry is stored, and an entry is used only
// while it matches that record; one that does not, such as an entry an
// older krgimage stored, is removed. The archive is restored through a
// private hard link of it, checked against the SHA-256 meta.json gives
// rather than against the sidecar in the entry: someone who could write
// the entry, but not the ledger, can rewrite the archive and its sidecar
// consistently, and still not have it restored.
package stagecache
