// Package bootstrap creates an image's base Debian system. It drives the
// real debootstrap, checking first, in seconds, everything that would
// otherwise make it fail minutes later: root, the tools, an empty target,
// a reachable mirror that carries the suite, components and architecture,
// and a host able to run the target's binaries.
package bootstrap

import "errors"

// Errors callers may branch on.
var (
	ErrNotRoot        = errors.New("not running as root")
	ErrMissingTool    = errors.New("missing tool")
	ErrTargetNotEmpty = errors.New("target directory is not empty")
	ErrMirror         = errors.New("mirror unreachable")
	ErrUnknownSuite   = errors.New("suite not on mirror")
	ErrArch           = errors.New("architecture not runnable on this host")
)
