package provision

import (
	"context"
	"fmt"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// Write writes a file with inline content (not subject to ${VAR}
// expansion):
//
//   - write: {path: /etc/motd, content: "Kerrighed node\n"}
type Write struct {
	Path    string `yaml:"path" check:"abspath"`
	Content string `yaml:"content" expand:"no" text:"multiline"`
	Mode    string `yaml:"mode" check:"mode"`
	Owner   string `yaml:"owner" check:"owner"`
	Group   string `yaml:"group" check:"owner"`
}

var writeType = typeOf(func() *Write { return &Write{Mode: "0644", Owner: "root", Group: "root"} }, func(c *Write, _ *Image) Step { return write{c} })

func (w *Write) Validate(v *recipes.Validator, keyPath string) {
	if w.Path == "" {
		v.Errorf(keyPath, recipes.ErrMissing, "write needs a path")
	}
}

// write writes inline content to an image file (Write).
type write struct{ cfg *Write }

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
