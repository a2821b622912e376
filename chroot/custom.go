package chroot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
)

// runScript runs a recipe's shell script inside the image, or on the host
// with ROOT set when chroot is false.
type runScript struct {
	cfg *recipes.Run
	img *Image
}

func (r runScript) source() string {
	if r.cfg.File != "" {
		return r.cfg.File
	}
	first, _, _ := strings.Cut(strings.TrimSpace(r.cfg.Script), "\n")
	if len(first) > 60 {
		first = first[:57] + "..."
	}
	return "inline script (" + first + ")"
}

func (r runScript) env() []string {
	keys := make([]string, 0, len(r.cfg.Env))
	for k := range r.cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var env []string
	for _, k := range keys {
		env = append(env, k+"="+r.cfg.Env[k])
	}
	return env
}

// shownEnv is the environment as the plan shows it: values only of the
// entries the recipe lists in public_variables.
func (r runScript) shownEnv() []string {
	var out []string
	for _, kv := range r.env() {
		k, _, _ := strings.Cut(kv, "=")
		if !r.img.Recipe.Public(k) {
			kv = k + "=(withheld: not in public_variables)"
		}
		out = append(out, kv)
	}
	return out
}

func (r runScript) Describe() []string {
	where := "inside the image"
	if !r.cfg.Chroot {
		where = "on the build host, with ROOT set to the image root"
	}
	out := []string{"run " + r.source() + " with " + r.cfg.Shell + " " + where}
	if len(r.cfg.Env) > 0 {
		out = append(out, "environment: "+strings.Join(r.shownEnv(), " "))
	}
	return out
}

func (r runScript) Check() error {
	if r.cfg.File == "" {
		return nil
	}
	if _, err := os.Stat(r.img.Recipe.Path(r.cfg.File)); err != nil {
		return fmt.Errorf("%w: script: %v", ErrMissing, err)
	}
	return nil
}

func (r runScript) Apply(ctx context.Context, s *Session) error {
	script := r.cfg.Script
	if r.cfg.File != "" {
		b, err := os.ReadFile(s.Recipe.Path(r.cfg.File))
		if err != nil {
			return err
		}
		script = string(b)
	}
	// The script goes in on stdin: no temporary file in the image, and no
	// script text in the process list.
	if r.cfg.Chroot {
		return s.RunCommand(ctx, Command{Argv: []string{r.cfg.Shell, "-s"}, Env: r.env(), Stdin: strings.NewReader(script), Timeout: r.cfg.Timeout.Duration})
	}
	return s.Runner.Run(ctx, run.Cmd{
		Path: r.cfg.Shell, Args: []string{"-s"}, Dir: s.Recipe.Dir(),
		Env:     append(s.Env(r.env()...), "ROOT="+s.Root),
		Stdin:   strings.NewReader(script),
		Timeout: r.cfg.Timeout.Duration,
	})
}

// files copies files and directories from the recipe's directory into the
// image, confined to the image root.
type files struct {
	cfg *recipes.Files
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
			errs = append(errs, fmt.Errorf("%w: source %v", ErrMissing, err))
		}
		if _, err := rel(fs.Dst); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (f files) Apply(_ context.Context, s *Session) error {
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

func copyIn(s *Session, spec recipes.FileSpec) error {
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
			tr, err := rel(target)
			if err != nil {
				return err
			}
			if err := confine(target, s.FS().MkdirAll(tr, 0o755)); err != nil {
				return err
			}
			return s.setOwnerMode(tr, info.Mode().Perm(), spec.Owner, spec.Group)
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

func copyFile(s *Session, src, dst string, mode os.FileMode, owner, group string) error {
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

// write writes inline content to an image file.
type write struct{ cfg *recipes.Write }

func (w write) Describe() []string {
	return []string{fmt.Sprintf("write %s (%d bytes, mode %s, %s:%s)", w.cfg.Path, len(w.cfg.Content), w.cfg.Mode, w.cfg.Owner, w.cfg.Group)}
}

func (write) Check() error { return nil }

func (w write) Apply(_ context.Context, s *Session) error {
	mode, _ := parseMode(w.cfg.Mode)
	return s.WriteFile(w.cfg.Path, []byte(w.cfg.Content), mode, w.cfg.Owner, w.cfg.Group)
}
