// Package compression names the compressions a krgimage snapshot can be
// written with, and reads them from file names. It holds names only, no
// codec, so that recipe validation can check a snapshot's compression
// without importing the snapshot writer.
package compression
