//go:build !linux

package snapshot

import (
	"errors"
	"log/slog"
)

type extractor struct{}

func newExtractor(string, *slog.Logger, int, bool) (*extractor, error) {
	return nil, errors.ErrUnsupported
}

func (*extractor) close()                {}
func (*extractor) extract(*member) error { return errors.ErrUnsupported }
func (*extractor) finish(bool) error     { return errors.ErrUnsupported }
