// Package nosync runs commands with fsync and its relatives turned into
// no-ops, the way systemd-nspawn's --suppress-sync does: package managers
// sync after every file, which makes image builds wait on the disk for a
// durability the build gets once, at its end, from a single syncfs.
package nosync
