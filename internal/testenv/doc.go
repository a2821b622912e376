// Package testenv is how a test of this project says its environment
// cannot run it: it needs root, or a host tool that is not installed.
package testenv
