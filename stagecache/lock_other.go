//go:build !unix

package stagecache

import "errors"

type lock struct{}

func takeLock(string, bool, bool) (*lock, error) { return nil, errors.ErrUnsupported }

func (*lock) unlock() error { return nil }
