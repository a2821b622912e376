package boottest

import (
	"strings"
	"testing"

	"github.com/krgimage/krgimage/recipes"
)

func TestPreflightNamesWhatToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := preflight(&recipes.Recipe{Netboot: &recipes.Netboot{}}, "user", t.TempDir(), true)
	if err == nil {
		t.Fatal("preflight passed without QEMU, ganesha or pxelinux")
	}
	for _, want := range []string{"install qemu-system-x86", "install nfs-ganesha", "install pxelinux"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}
