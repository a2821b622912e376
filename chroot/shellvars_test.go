package chroot

import "testing"

func TestSetShellVar(t *testing.T) {
	tests := []struct{ in, key, val, want string }{
		{"A=1\nBOOT=local\n", "BOOT", "nfs", "A=1\nBOOT=nfs\n"},
		{"# BOOT=local\nX=1\n", "BOOT", "nfs", "BOOT=nfs\nX=1\n"},
		{"X=1", "BOOT", "nfs", "X=1\nBOOT=nfs\n"},
		{"BOOTX=1\n", "BOOT", "nfs", "BOOTX=1\nBOOT=nfs\n"},
		{"", "ASYNCMOUNTNFS", "no", "ASYNCMOUNTNFS=no\n"},
	}
	for _, tt := range tests {
		if got := setShellVar(tt.in, tt.key, tt.val); got != tt.want {
			t.Errorf("setShellVar(%q, %s) = %q, want %q", tt.in, tt.key, got, tt.want)
		}
	}
}
