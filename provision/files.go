package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// Files copies files or directories from the recipe's directory into the
// image:
//
//   - files:
//   - {src: motd, dst: /etc/motd, mode: "0644"}
type Files struct {
	Files []FileSpec `yaml:"files"`
}

var filesType = typeOf(func() *Files { return &Files{} }, func(c *Files, img *Image) Step { return files{c, img} })

func (*Files) ShorthandField() string { return "files" }

func (f *Files) Validate(v *recipes.Validator, keyPath string) {
	if len(f.Files) == 0 {
		v.Errorf(keyPath, recipes.ErrMissing, "list at least one file")
	}
	for i, s := range f.Files {
		p := fmt.Sprintf("%s[%d]", keyPath, i)
		if s.Src == "" {
			v.Errorf(p, recipes.ErrMissing, "a file needs src")
		}
		if s.Dst == "" {
			v.Errorf(p, recipes.ErrMissing, "a file needs dst")
		}
	}
}

// FileSpec is one copy.
type FileSpec struct {
	Src   string `yaml:"src"`
	Dst   string `yaml:"dst" check:"abspath"`
	Mode  string `yaml:"mode,omitempty" check:"mode"`
	Owner string `yaml:"owner" check:"owner"`
	Group string `yaml:"group" check:"owner"`
}

func (f *FileSpec) SetDefaults() { f.Owner, f.Group = "root", "root" }

// files copies files and directories from the recipe's directory into the
// image, confined to the image root (Files).
type files struct {
	cfg *Files
	img *Image
}

func (f files) Describe() []string {
	var out []string
	for _, fs := range f.cfg.Files {
		line := fmt.Sprintf("copy %s to %s (%s:%s", fs.Src, fs.Dst, fs.Owner, fs.Group)
		if fs.Mode != "" {
			line += ", mode " + fs.Mode
		}
		out = append(out, line+")")
	}
	return out
}

func (f files) Check() error {
	var errs []error
	for _, fs := range f.cfg.Files {
		if _, err := os.Stat(f.img.Recipe.Path(fs.Src)); err != nil {
			errs = append(errs, fmt.Errorf("%w: source %v", chroot.ErrMissing, err))
		}
		if _, err := chroot.RelPath(fs.Dst); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reads: every source, file or directory tree.
func (f files) Reads() ([]Input, error) {
	var in inputs
	for _, spec := range f.cfg.Files {
		in.file("src", spec.Src)
	}
	return in, nil
}

// ChangesKernel: a copy to where the kernel package reads its
// configuration, or installs to, can.
func (f files) ChangesKernel() bool {
	for _, spec := range f.cfg.Files {
		if touchesKernel(spec.Dst) {
			return true
		}
	}
	return false
}

func (f files) Apply(_ context.Context, s *chroot.Session) error {
	for _, spec := range f.cfg.Files {
		if err := copyIn(s, spec); err != nil {
			return fmt.Errorf("copying %s to %s: %w", spec.Src, spec.Dst, err)
		}
	}
	return nil
}

func parseMode(m string) (os.FileMode, bool) {
	if m == "" {
		return 0, false
	}
	v, err := strconv.ParseUint(m, 8, 32)
	if err != nil {
		return 0, false
	}
	mode := os.FileMode(v & 0o777)
	if v&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if v&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if v&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode, true
}

func copyIn(s *chroot.Session, spec FileSpec) error {
	src := s.Recipe.Path(spec.Src)
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	dst := spec.Dst
	if !fi.IsDir() && strings.HasSuffix(dst, "/") {
		dst = filepath.Join(dst, filepath.Base(src))
	}
	mode, explicit := parseMode(spec.Mode)
	if !fi.IsDir() {
		if !explicit {
			mode = fi.Mode().Perm()
		}
		return copyFile(s, src, dst, mode, spec.Owner, spec.Group)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, r)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := s.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return s.SetOwnerMode(target, info.Mode().Perm(), spec.Owner, spec.Group)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return s.Symlink(link, target)
		case d.Type().IsRegular():
			m := info.Mode().Perm()
			if explicit {
				m = mode
			}
			return copyFile(s, p, target, m, spec.Owner, spec.Group)
		}
		return fmt.Errorf("%s: only files, directories and symbolic links can be copied", p)
	})
}

func copyFile(s *chroot.Session, src, dst string, mode os.FileMode, owner, group string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	return s.WriteFile(dst, data, mode, owner, group)
}
