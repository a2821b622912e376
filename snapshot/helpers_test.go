package snapshot

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
)

// capNetRaw is ping's security.capability: cap_net_raw+ep (VFS v2).
var capNetRaw = []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

func requireRoot(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t, "chown, mknod, capabilities")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
