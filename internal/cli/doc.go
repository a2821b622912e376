// Package cli is krgimage's command tree. cmd/krgimage only builds a
// context and calls Execute, so tests run the real commands in-process.
package cli
