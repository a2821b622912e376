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
package stagecache
