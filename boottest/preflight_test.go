package boottest

import (
	"strings"
	"testing"
)

func TestPreflightNamesWhatToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := preflight("user", t.TempDir(), true)
	if err == nil {
		t.Fatal("preflight passed without QEMU, ganesha or pxelinux")
	}
	for _, want := range []string{"install qemu-system-x86", "install nfs-ganesha", "install pxelinux"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}
