//go:build !linux

package snapshot

import (
	"context"
	"errors"
	"os"
)

func scanTree(context.Context, string, scanOptions) ([]*node, error) {
	return nil, errors.ErrUnsupported
}

func openFile(string, *node) (*os.File, error) { return nil, errors.ErrUnsupported }
