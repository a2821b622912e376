// Package golden compares what a test produced with a file in testdata,
// and rewrites that file when the test binary runs with -update. It is
// the one place the -update flag is declared, so that every package's
// golden files are accepted the same way: go test ./pkg -update, then
// review the diff.
package golden
