// Package fsutil holds the file operations every krgimage writer relies on:
// atomic replacement, an exclusive lock on an output, and a removal that
// refuses to descend into a mounted filesystem.
package fsutil
