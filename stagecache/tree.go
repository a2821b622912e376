package stagecache

// Fingerprint describes a tree by the metadata of its entries: paths,
// inodes, types, modes, owners, sizes, modification and change times.
// Any write, chmod, chown, rename or utimes below the root changes it
// (through the change time, which no one can set), at the cost of one
// lstat per entry instead of reading every file. The root directory itself
// is left out: moving the tree into place changes its change time.
type Fingerprint struct {
	Digest  string `json:"digest"`
	Entries int    `json:"entries"`
	// Bytes is the apparent size of its files.
	Bytes int64 `json:"bytes"`
}
