//go:build !linux

package stagecache

import (
	"context"
	"errors"
)

// LinkTree is Linux only.
func LinkTree(context.Context, string, string) error { return errors.ErrUnsupported }

// TreeFingerprint is Linux only.
func TreeFingerprint(context.Context, string) (Fingerprint, error) {
	return Fingerprint{}, errors.ErrUnsupported
}
