// Package testenv provides the expensive fixtures krgimage's tests share
// within one test run and across packages: a bootstrapped Debian root made
// once and copied for each test that changes it. Fixtures live in
// $KRGIMAGE_TEST_CACHE (the Makefile points it into the checkout) and are
// guarded by file locks, since go test runs packages in parallel.
package testenv
