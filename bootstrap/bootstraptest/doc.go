// Package bootstraptest builds Debian repositories for tests: .debs made in
// Go, Packages indexes, a Release signed with a throwaway OpenPGP key, laid
// out like a current suite or like lenny, served over HTTP. The native
// bootstrapper's tests, and those of the pipeline and the CLI that drive
// it, install from them instead of a real mirror.
package bootstraptest
