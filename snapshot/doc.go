// Package snapshot writes, restores, verifies and compares lossless,
// reproducible tarballs of root filesystems: the seed's "tar -p of the
// directory after the install", made trustworthy.
//
// # Format
//
// A snapshot is a POSIX pax tar, compressed with zstd (default), gzip, xz
// or nothing. Its first entry, ./.krgimage-manifest, lists every path (see
// Manifest); the tree follows, depth first, the names of each directory
// sorted bytewise, named "./path" as GNU tar -C ROOT . names them, the root
// itself as "./". Owners are numeric, user and group names empty. Modes keep
// setuid, setgid and sticky; mtimes keep their nanoseconds (a pax mtime
// record). Extended attributes are SCHILY.xattr records, POSIX ACLs among
// them as system.posix_acl_access and _default, which GNU tar and bsdtar
// ignore on extraction: the ACLs are therefore also written as
// SCHILY.acl.access and SCHILY.acl.default text records, with numeric
// qualifiers. Hardlinks are found by device and inode; the first name in
// archive order holds the data. Files with holes (SEEK_DATA/SEEK_HOLE) use
// GNU sparse format 1.0. Names that are not UTF-8 get hdrcharset=BINARY
// (GNU tar 1.34 warns that it does not know the keyword, and extracts the
// name right). Sockets are skipped with a warning, and so is what lies
// below a mount point. Next to the archive, ARCHIVE.sha256 holds its
// SHA-256 in sha256sum's format.
//
// # Reproducibility
//
// The archive's bytes depend on the tree (content and metadata, atimes and
// ctimes excepted), on Options.SourceDateEpoch, which clamps newer mtimes,
// and on the compression and its level. They do not depend on the number of
// threads: with zstd, the manifest entry is compressed into frames of its
// own and the rest of the tar stream is cut into 8 MiB frames, all
// compressed independently and written in order; pgzip uses fixed 1 MiB
// blocks, and xz runs on one thread. Without SourceDateEpoch the manifest's mtime is the newest in the
// tree, so snapshots of an unchanged tree are identical too. The bytes may
// change with the version of github.com/klauspost/compress.
//
// # Restoring
//
// Restore builds the tree in a staging directory next to the target, in
// the order create, chown, chmod (so setuid survives), xattrs, times;
// directories get their metadata last. Each entry is created by its last
// component, never followed, in a directory opened with openat2(2)
// resolved in the root (RESOLVE_IN_ROOT) through no symlink, or one
// component at a time with O_NOFOLLOW on kernels without openat2. It
// refuses, with ErrUnsafePath, any entry that could write outside the
// target or through a link. Symlinks are data: snapshot archives, and
// restore recreates, any target verbatim, absolute, above the root or
// dangling, as GNU tar does. Only when every entry matched the manifest
// and the archive its sidecar is the staging directory renamed into place.
//
// Linux only: elsewhere the functions that touch a tree return
// errors.ErrUnsupported.
package snapshot
