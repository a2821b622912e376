// Package testenv is the one way a test of this project skips, for want
// of root or of a host tool: by hand it skips, under make test
// (KRGIMAGE_TEST_STRICT=1, as root, with every tool make deps installs)
// it fails, so that CI never passes a test it did not run. It imports
// only the standard library, so that every package's tests can use it;
// the shared fixtures are internal/testfixture.
package testenv
