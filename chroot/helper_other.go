//go:build !linux

package chroot

import "syscall"

const helperEnv = "KRGIMAGE_CHROOT_HELPER"

type helperSpec struct {
	Root string   `json:"root"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
}

func helperAttr() *syscall.SysProcAttr { return nil }
