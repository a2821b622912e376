// Package testfixture holds the expensive fixtures shared by every test of
// a run, across packages: a bootstrapped Debian root, a kernel root
// derived from it, and the mirror both come from. A root is made once and
// copied for each test that changes it. Fixtures live in
// $KRGIMAGE_TEST_CACHE (the Makefile points it into the checkout) and are
// guarded by file locks, since go test runs packages in parallel. It
// imports internal packages, so their own tests cannot use it; they skip
// through internal/testenv, which imports nothing of the project.
package testfixture
