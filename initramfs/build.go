package initramfs

import (
	"context"
	"debug/elf"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/quote"
)

//go:embed scripts
var scripts embed.FS

// NFSModules are always included: the NFS client, for versions 3 and 4.
var NFSModules = []string{"nfs", "nfsv3", "nfsv4"}

// applets are the busybox commands /init and its helpers use, linked by
// name so that they work without busybox --install.
var applets = []string{
	"cat", "cttyhack", "echo", "grep", "hostname", "insmod", "ip", "ln", "ls", "mkdir", "mount",
	"printf", "reboot", "rm", "sed", "setsid", "sh", "sleep", "switch_root", "tr", "udhcpc", "umount", "uname",
}

// ErrNoBusybox: neither the image nor the recipe provides busybox.
var ErrNoBusybox = errors.New("no busybox")

// FileCopy puts a host file into the initramfs.
type FileCopy struct {
	Src string // on the build host
	Dst string // absolute path in the initramfs
}

// Options describe an initramfs to build.
type Options struct {
	// Root is the image root: the kernel's modules and config, and
	// busybox, come from it.
	Root   string
	Kernel string
	// Compression is gzip (default), xz, zstd, lzma or none.
	Compression string
	// NICs are network drivers to include; with DefaultNICs, absent ones
	// are skipped, otherwise each must exist.
	NICs        []string
	DefaultNICs bool
	// Modules are more modules to include; each must exist.
	Modules []string
	// Busybox is a host path used when the image has no busybox.
	Busybox string
	Files   []FileCopy
	// NFSVersion and Mode are what /init uses when the kernel command line
	// does not say (vers= in nfsroot=, ro/rw).
	NFSVersion int
	Mode       string
	// NFSOptions are extra mount options for the root.
	NFSOptions []string
	// BuildTime is the time written in the archive (SOURCE_DATE_EPOCH).
	BuildTime time.Time
	Log       *slog.Logger
}

// Result describes what went in.
type Result struct {
	Modules  []string // load order, relative to /lib/modules/VERSION
	Absent   []string // default NICs this kernel lacks
	Builtin  []string
	Busybox  string // where it came from
	Entries  int
	Size     int64 // compressed
	Compress string
}

// busybox finds the busybox binary: the image's own (busybox-static or
// busybox), else the one the recipe names.
func busybox(o Options) (hostPath string, err error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox", "/sbin/busybox"} {
		if r, err := resolveIn(o.Root, p); err == nil {
			if fi, err := os.Stat(filepath.Join(o.Root, r)); err == nil && fi.Mode().IsRegular() {
				return filepath.Join(o.Root, r), nil
			}
		}
	}
	if o.Busybox != "" {
		if _, err := os.Stat(o.Busybox); err != nil {
			return "", fmt.Errorf("%w: %v", ErrNoBusybox, err)
		}
		return o.Busybox, nil
	}
	return "", fmt.Errorf("%w in the image: add busybox-static to a packages step, or set initramfs.busybox", ErrNoBusybox)
}

// Assemble gathers the initramfs contents.
func Assemble(o Options) (*Archive, *Result, error) {
	res := &Result{Compress: o.Compression}
	a := NewArchive()
	for _, d := range []string{"bin", "sbin", "dev", "etc/krgimage", "lib/krgimage", "proc", "root", "run", "sys", "tmp"} {
		if err := a.Dir(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	if err := a.Dir("tmp", 0o1777); err != nil {
		return nil, nil, err
	}

	bb, err := busybox(o)
	if err != nil {
		return nil, nil, err
	}
	res.Busybox = bb
	data, err := os.ReadFile(bb)
	if err != nil {
		return nil, nil, err
	}
	if err := a.File("bin/busybox", data, 0o755, time.Time{}); err != nil {
		return nil, nil, err
	}
	if err := addLibraries(a, o, bb); err != nil {
		return nil, nil, fmt.Errorf("busybox: %w", err)
	}
	for _, app := range applets {
		if err := a.Symlink("bin/"+app, "busybox"); err != nil {
			return nil, nil, err
		}
	}

	mods, err := LoadModules(o.Root, o.Kernel)
	if err != nil {
		return nil, nil, err
	}
	required := append([]string{}, NFSModules...)
	required = append(required, o.Modules...)
	var optional []string
	if o.DefaultNICs {
		optional = o.NICs
	} else {
		required = append(required, o.NICs...)
	}
	sel, err := mods.Resolve(required, optional)
	if err != nil {
		return nil, nil, err
	}
	res.Absent, res.Builtin = sel.Absent, sel.Builtin
	var order []string
	for _, rel := range sel.Paths {
		name, data, err := mods.ReadModule(rel)
		if err != nil {
			return nil, nil, err
		}
		if err := a.File(filepath.Join("lib/modules", o.Kernel, name), data, 0o644, time.Time{}); err != nil {
			return nil, nil, err
		}
		order = append(order, name)
	}
	res.Modules = order
	if err := a.File("etc/krgimage/modules", []byte(strings.Join(order, "\n")+"\n"), 0o644, time.Time{}); err != nil {
		return nil, nil, err
	}

	if err := addScripts(a); err != nil {
		return nil, nil, err
	}
	if err := a.File("etc/krgimage/initramfs.conf", []byte(config(o)), 0o644, time.Time{}); err != nil {
		return nil, nil, err
	}
	for _, f := range o.Files {
		data, err := os.ReadFile(f.Src)
		if err != nil {
			return nil, nil, fmt.Errorf("extra file: %w", err)
		}
		fi, _ := os.Stat(f.Src)
		if err := a.File(f.Dst, data, uint32(fi.Mode().Perm()), fi.ModTime()); err != nil {
			return nil, nil, err
		}
	}
	res.Entries = a.Len()
	return a, res, nil
}

func addScripts(a *Archive) error {
	for _, s := range []struct {
		src, dst string
		perm     uint32
	}{{"scripts/init", "init", 0o755}, {"scripts/functions.sh", "lib/krgimage/functions.sh", 0o644}, {"scripts/udhcpc.script", "lib/krgimage/udhcpc.script", 0o755}} {
		b, err := scripts.ReadFile(s.src)
		if err != nil {
			return err
		}
		if err := a.File(s.dst, b, s.perm, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// addLibraries adds what a dynamically linked busybox needs.
func addLibraries(a *Archive, o Options, bb string) error {
	f, err := elf.Open(bb)
	if err != nil {
		return err
	}
	interp := false
	for _, p := range f.Progs {
		interp = interp || p.Type == elf.PT_INTERP
	}
	f.Close()
	if !interp {
		return nil
	}
	rel, err := filepath.Rel(o.Root, bb)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("%s is dynamically linked but not in the image, so its libraries cannot be found: use busybox-static", bb)
	}
	libs, err := Libraries(o.Root, "/"+rel)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(libs))
	for n := range libs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(o.Root, libs[n]))
		if err != nil {
			return err
		}
		if err := a.File(n, data, 0o755, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// config is /etc/krgimage/initramfs.conf: the image's defaults for /init.
func config(o Options) string {
	vers := o.NFSVersion
	if vers == 0 {
		vers = 3
	}
	mode := o.Mode
	if mode == "" {
		mode = "ro"
	}
	var b strings.Builder
	b.WriteString("# Written by krgimage: defaults /init uses when the kernel command line is silent.\n")
	// /init sources this file: every value is one shell word.
	fmt.Fprintf(&b, "KRG_KERNEL=%s\n", quote.Shell(o.Kernel))
	fmt.Fprintf(&b, "KRG_DEFAULT_NFS_VERSION=%d\n", vers)
	fmt.Fprintf(&b, "KRG_DEFAULT_MODE=%s\n", quote.Shell(mode))
	fmt.Fprintf(&b, "KRG_DEFAULT_NFS_OPTIONS=%s\n", quote.Shell(strings.Join(o.NFSOptions, ",")))
	b.WriteString("KRG_ATTEMPTS=3\n")
	return b.String()
}

// Write builds the initramfs and writes it, compressed, to w.
func Write(ctx context.Context, o Options, w io.Writer) (*Result, error) {
	if o.Compression == "" {
		o.Compression = "gzip"
	}
	if err := CheckCompression(o.Root, o.Kernel, o.Compression); err != nil {
		return nil, err
	}
	a, res, err := Assemble(o)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cw := &countWriter{w: w}
	c, err := compressor(cw, o.Compression)
	if err != nil {
		return nil, err
	}
	if err := a.WriteTo(c, o.BuildTime); err != nil {
		return nil, err
	}
	if err := c.Close(); err != nil {
		return nil, err
	}
	res.Size = cw.n
	res.Compress = o.Compression
	return res, nil
}

// WriteFile writes the initramfs to path atomically: on any error the
// previous file, if any, is left as it was.
func WriteFile(ctx context.Context, o Options, path string) (*Result, error) {
	var res *Result
	err := fsutil.WriteAtomic(path, 0o644, func(f *os.File) error {
		var err error
		res, err = Write(ctx, o, f)
		return err
	})
	return res, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
