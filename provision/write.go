package provision

import (
	"context"
	"fmt"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// write writes inline content to an image file (recipes.Write).
type write struct{ cfg *recipes.Write }

func (w write) Describe() []string {
	return []string{fmt.Sprintf("write %s (%d bytes, mode %s, %s:%s)", w.cfg.Path, len(w.cfg.Content), w.cfg.Mode, w.cfg.Owner, w.cfg.Group)}
}

func (write) Check() error { return nil }

// Reads nothing beyond its configuration, which holds the content.
func (write) Reads() ([]Input, error) { return nil, nil }

// ChangesKernel: a file where the kernel package reads its configuration,
// or installs to, can.
func (w write) ChangesKernel() bool { return touchesKernel(w.cfg.Path) }

func (w write) Apply(_ context.Context, s *chroot.Session) error {
	mode, _ := parseMode(w.cfg.Mode)
	return s.WriteFile(w.cfg.Path, []byte(w.cfg.Content), mode, w.cfg.Owner, w.cfg.Group)
}
