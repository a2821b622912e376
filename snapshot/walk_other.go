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

func openData(string, *node) (*os.File, []segment, error) { return nil, nil, errors.ErrUnsupported }

func stillSame(*os.File, *node) (int64, error) { return 0, errors.ErrUnsupported }
