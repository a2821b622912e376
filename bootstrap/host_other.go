//go:build !linux

package bootstrap

import (
	"runtime"
	"syscall"
)

func machine() string { return runtime.GOARCH }

func privateMounts() *syscall.SysProcAttr { return nil }
