//go:build !linux

package netboot

import (
	"errors"
	"fmt"
	"os"
)

// installRoot has no implementation here: writing without following a
// symlink needs openat(2) with O_NOFOLLOW from directory descriptors,
// which this package only uses on Linux, the system krgimage serves.
type installRoot struct{}

func openInstallRoot(root string) (*installRoot, error) {
	return nil, fmt.Errorf("installing into %s: %w on this system", root, errors.ErrUnsupported)
}

func (*installRoot) close() {}

func (*installRoot) install(string, []byte, os.FileMode) (installResult, error) {
	return installResult{}, errors.ErrUnsupported
}
