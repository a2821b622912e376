package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/confread"
	"github.com/krgimage/krgimage/internal/quote"
	"github.com/krgimage/krgimage/recipes"
)

// Fstab writes the seed's /etc/fstab for the recipe's nfsroot mode: for a
// read-only root, proc, sysfs, configfs, the writable NFS mounts and the
// tmpfs mounts; for a read-write root, the minimal fstab.
//
//   - fstab: {swap: /dev/hda, options: {/var: "rw,hard,nolock,noatime"}}
type Fstab struct {
	// Swap is a swap device line to add (the seed's /dev/hda).
	Swap string `yaml:"swap,omitempty" check:"confpath"`
	// Configfs mounts configfs on /config (Kerrighed uses it).
	Configfs bool `yaml:"configfs"`
	// Options overrides the mount options of a mount point, written as
	// fstab has them (rw,hard,nolock); "" is fstab's defaults.
	Options map[string]string `yaml:"options,omitempty" check:"options"`
	// Extra lines appended verbatim.
	Extra []string `yaml:"extra,omitempty"`
}

var fstabType = typeOf(func() *Fstab { return &Fstab{Configfs: true} }, func(c *Fstab, img *Image) Step { return fstab{c, img} })

func (f *Fstab) Validate(v *recipes.Validator, keyPath string) {
	if v.Recipe().NFSRoot == nil {
		v.Errorf(keyPath, recipes.ErrMissing, "the fstab step needs an nfsroot: section (server, path, mode)")
	}
	for mp := range f.Options {
		if !strings.HasPrefix(mp, "/") {
			v.Errorf(keyPath+".options."+mp, recipes.ErrInvalid, "mount point %q must be absolute", mp)
		}
	}
}

// FstabFile renders the seed's /etc/fstab for the recipe's NFS root mode.
func FstabFile(r *recipes.Recipe, cfg *Fstab) string {
	n := r.NFSRoot
	var rows [][]string
	add := func(src, mp, typ, opts string) {
		if o, ok := cfg.Options[mp]; ok {
			opts = o
		}
		if opts == "" {
			// An empty field would shift the dump and pass numbers into
			// the options (getmntent splits at runs of blanks). fstab(5)
			// spells "no options" defaults, and that is what an override
			// "" or an empty list (options: []) asks for: nothing beyond
			// what mount does anyway.
			opts = "defaults"
		}
		// getmntent reads octal escapes (\040) in every field: a space or
		// a newline in a value stays inside its field.
		rows = append(rows, []string{quote.Octal(src), quote.Octal(mp), typ, quote.Octal(opts), "0", "0"})
	}
	if cfg.Swap != "" {
		add(cfg.Swap, "none", "swap", "sw")
	}
	add("none", "/proc", "proc", "defaults")
	add("none", "/sys", "sysfs", "defaults")
	if cfg.Configfs {
		add("none", "/config", "configfs", "defaults")
	}
	if n.Mode == "ro" {
		for _, m := range n.Writable {
			if m.Type == "tmpfs" {
				add("none", m.Path, "tmpfs", strings.Join(m.Options, ","))
				continue
			}
			opts := m.Options
			if n.Version == 4 && !slices.ContainsFunc(opts, isNFSVers) {
				opts = append(slices.Clip(opts), "vers=4")
			}
			add(n.Server.String()+":"+m.Source, m.Path, "nfs", strings.Join(opts, ","))
		}
	}
	for _, t := range n.Tmpfs {
		add("none", t, "tmpfs", "defaults")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# /etc/fstab: written by krgimage for a read-%s NFS root (recipe %s).\n", map[string]string{"ro": "only", "rw": "write"}[n.Mode], quote.Plain(r.Name))
	fmt.Fprintf(&b, "# The root itself is mounted by the kernel or initramfs from %s:%s.\n", n.Server, quote.Plain(n.Path))
	b.WriteString("# <file system>\t<mount point>\t<type>\t<options>\t<dump>\t<pass>\n")
	for _, row := range rows {
		b.WriteString(strings.Join(row, "\t"))
		b.WriteByte('\n')
	}
	for _, e := range cfg.Extra {
		b.WriteString(quote.Plain(e) + "\n")
	}
	return b.String()
}

func isNFSVers(opt string) bool {
	return strings.HasPrefix(opt, "vers=") || strings.HasPrefix(opt, "nfsvers=")
}

// fstab writes /etc/fstab and creates its mount points (Fstab).
type fstab struct {
	cfg *Fstab
	img *Image
}

func (f fstab) Describe() []string {
	lines := []string{"write /etc/fstab for a read-" + map[string]string{"ro": "only", "rw": "write"}[f.img.Recipe.NFSRoot.Mode] + " NFS root:"}
	for _, l := range strings.Split(strings.TrimSpace(FstabFile(f.img.Recipe, f.cfg)), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, "  "+strings.ReplaceAll(l, "\t", " "))
		}
	}
	return lines
}

func (fstab) Check() error { return nil }

// Reads nothing beyond the recipe context, which holds the nfsroot
// section.
func (fstab) Reads() ([]Input, error) { return nil, nil }

// ChangesKernel: the kernel package does not read /etc/fstab.
func (fstab) ChangesKernel() bool { return false }

// mountPoints lists the directories fstab mounts on.
func (f fstab) mountPoints() ([]string, error) {
	entries, err := confread.Fstab(FstabFile(f.img.Recipe, f.cfg))
	if err != nil {
		return nil, fmt.Errorf("reading back the generated fstab: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Target, "/") {
			out = append(out, e.Target)
		}
	}
	return out, nil
}

func (f fstab) Apply(_ context.Context, s *chroot.Session) error {
	if err := s.WriteFile("/etc/fstab", []byte(FstabFile(f.img.Recipe, f.cfg)), 0o644, "root", "root"); err != nil {
		return err
	}
	// Mount points must exist on a read-only root: nobody can create them
	// at boot.
	mps, err := f.mountPoints()
	if err != nil {
		return err
	}
	for _, mp := range mps {
		if _, err := chroot.RelPath(mp); err != nil {
			return err
		}
		if fi, err := s.Stat(mp); err == nil && fi.IsDir() {
			continue
		}
		if err := s.MkdirAll(mp, 0o755); err != nil {
			return fmt.Errorf("creating mount point %s: %w", mp, err)
		}
	}
	return nil
}
