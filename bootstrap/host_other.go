//go:build !linux

package bootstrap

import "runtime"

func machine() string { return runtime.GOARCH }
