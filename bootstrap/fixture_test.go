package bootstrap

import (
	"archive/tar"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/krgimage/krgimage/bootstrap/bootstraptest"
	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
)

// fixtureDebs is a small distribution shaped like Debian's: an essential
// set with debootstrap's core packages, a library cycle, a virtual package
// (awk), a Pre-Depends chain outside the essential set, and data archives
// in every compression dpkg knows.
func fixtureDebs() []bootstraptest.Deb {
	sh := "#!/bin/sh\nexit 0\n"
	return []bootstraptest.Deb{
		{Name: "base-passwd", Version: "3.6.1", Priority: "required", Essential: true,
			Files: []bootstraptest.File{{Path: "/usr", Type: tar.TypeDir}, {Path: "/usr/share", Type: tar.TypeDir},
				{Path: "/usr/share/base-passwd", Type: tar.TypeDir}, {Path: "/usr/share/base-passwd/passwd.master", Body: "root:*:0:0:root:/root:/bin/sh\n"}},
			Scripts: map[string]string{"preinst": sh}},
		{Name: "base-files", Version: "12.4", Priority: "required", Essential: true, PreDepends: "awk",
			Files: []bootstraptest.File{{Path: "/etc", Type: tar.TypeDir}, {Path: "/etc/debian_version", Body: "12.4\n"},
				{Path: "/usr/share/doc/base-files", Type: tar.TypeDir}, {Path: "/usr/share/doc/base-files/README", Body: "docs are left to dpkg\n"}}},
		{Name: "dpkg", Version: "1.21.23", Priority: "required", Essential: true, PreDepends: "libc6 (>= 2.34), libzstd1", Compression: "xz",
			Files: []bootstraptest.File{{Path: "/usr/bin/dpkg", Body: sh, Mode: 0o755}, {Path: "/sbin/start-stop-daemon", Body: "real ssd\n", Mode: 0o755},
				{Path: "/var/lib/dpkg", Type: tar.TypeDir}}},
		{Name: "libc6", Version: "2.36-9", Priority: "required", Depends: "libgcc-s1", Compression: "zst",
			Files: []bootstraptest.File{{Path: "/lib/x86_64-linux-gnu/libc.so.6", Body: "ELF libc\n"},
				{Path: "/lib64/ld-linux-x86-64.so.2", Type: tar.TypeSymlink, Link: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
				{Path: "/sbin/ldconfig", Body: sh, Mode: 0o755}}},
		{Name: "libgcc-s1", Version: "12.2.0-14", Priority: "required", Depends: "libc6 (>= 2.35)", Compression: "bz2",
			Files: []bootstraptest.File{{Path: "/lib/x86_64-linux-gnu/libgcc_s.so.1", Body: "ELF libgcc\n"}}},
		{Name: "libzstd1", Version: "1.5.4", Priority: "required", Depends: "libc6", Compression: "lzma",
			Files: []bootstraptest.File{{Path: "/usr/lib/x86_64-linux-gnu/libzstd.so.1", Body: "ELF zstd\n"}}},
		{Name: "mawk", Version: "1.3.4", Priority: "required", Provides: "awk", Depends: "libc6",
			Files: []bootstraptest.File{{Path: "/usr/bin/mawk", Body: sh, Mode: 0o755}}},
		{Name: "dash", Version: "0.5.12", Priority: "required", Essential: true, PreDepends: "libc6", Compression: "none",
			Files: []bootstraptest.File{{Path: "/bin/dash", Body: sh, Mode: 0o755}, {Path: "/bin/sh", Type: tar.TypeSymlink, Link: "dash"}}},
		{Name: "passwd", Version: "1:4.13", Priority: "required", Depends: "libc6, base-passwd",
			Files: []bootstraptest.File{{Path: "/usr/bin/passwd", Body: sh, Mode: 0o4755}, {Path: "/usr/bin/chage", Body: sh, Mode: 0o2755, Gid: 42}}},
		{Name: "libext2fs2", Version: "1.47.0", Priority: "required", Depends: "libc6",
			Files: []bootstraptest.File{{Path: "/usr/lib/x86_64-linux-gnu/libext2fs.so.2", Body: "ELF ext2fs\n"}}},
		{Name: "e2fsprogs", Version: "1.47.0", Priority: "required", PreDepends: "libext2fs2 (>= 1.46)", Depends: "logsave",
			Files: []bootstraptest.File{{Path: "/sbin/mke2fs", Body: sh, Mode: 0o755}, {Path: "/sbin/mkfs.ext4", Type: tar.TypeLink, Link: "./sbin/mke2fs"}}},
		{Name: "logsave", Version: "1.47.0", Priority: "required", Depends: "libc6",
			Files: []bootstraptest.File{{Path: "/sbin/logsave", Body: sh, Mode: 0o755}}},
		{Name: "apt", Version: "2.6.1", Priority: "important", Depends: "libapt-pkg6.0 (>= 2.6.1), gpgv | gpgv2, debian-archive-keyring",
			Files: []bootstraptest.File{{Path: "/usr/bin/apt", Body: sh, Mode: 0o755}}},
		{Name: "libapt-pkg6.0", Version: "2.6.1", Priority: "optional", Depends: "libc6, libzstd1",
			Files: []bootstraptest.File{{Path: "/usr/lib/x86_64-linux-gnu/libapt-pkg.so.6.0", Body: "ELF apt\n"}}},
		{Name: "gpgv", Version: "2.2.40", Priority: "optional", Depends: "libc6",
			Files: []bootstraptest.File{{Path: "/usr/bin/gpgv", Body: sh, Mode: 0o755}}},
		{Name: "debian-archive-keyring", Version: "2023.3", Architecture: "all", Priority: "optional",
			Files: []bootstraptest.File{{Path: "/usr/share/keyrings/debian-archive-keyring.gpg", Body: "keys\n"}}},
		{Name: "cron", Version: "3.0", Priority: "important", Depends: "libc6, default-mta | mail-transport-agent"},
		{Name: "exim4-daemon-light", Version: "4.96", Priority: "optional", Provides: "mail-transport-agent", Depends: "libc6"},
		{Name: "build-essential", Version: "12.9", Priority: "optional", Depends: "dpkg-dev"},
		{Name: "dpkg-dev", Version: "1.21.23", Architecture: "all", Priority: "optional", Depends: "dpkg (>= 1.21), perl:any"},
		{Name: "perl", Version: "5.36", Priority: "standard", Depends: "libc6"},
		{Name: "usr-is-merged", Version: "37", Architecture: "all", Priority: "optional"},
		{Name: "i386-only", Version: "1.0", Architecture: "i386", Priority: "required"},
	}
}

// minbaseNames is what the fixture's minbase resolves to.
var minbaseNames = []string{"apt", "base-files", "base-passwd", "dash", "debian-archive-keyring", "dpkg", "e2fsprogs", "gpgv",
	"libapt-pkg6.0", "libc6", "libext2fs2", "libgcc-s1", "libzstd1", "logsave", "mawk", "passwd", "usr-is-merged"}

// fakeExec stands in for the chroot: it records the commands and checks
// that every package dpkg is given is inside the target.
type fakeExec struct {
	mu    sync.Mutex
	calls [][]string
	fail  string // a command starting with this fails
	audit string // dpkg --audit's output
}

func (f *fakeExec) Exec(_ context.Context, img *chroot.Image, c chroot.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c.Argv)
	for _, a := range c.Argv {
		if strings.HasSuffix(a, ".deb") {
			if _, err := os.Stat(filepath.Join(img.Root, a)); err != nil {
				return err
			}
		}
	}
	if f.fail != "" && strings.HasPrefix(strings.Join(c.Argv, " "), f.fail) {
		return &run.Error{Cmd: strings.Join(c.Argv, " "), ExitCode: 1, Err: os.ErrInvalid}
	}
	if slices.Equal(c.Argv, []string{"dpkg", "--audit"}) && c.Stdout != nil {
		c.Stdout.Write([]byte(f.audit))
	}
	return nil
}

// fakePriv records what would need root and makes placeholders.
type fakePriv struct {
	mu     sync.Mutex
	owners map[string][2]int
	nodes  map[string]fs.FileMode
	xattrs map[string]string
}

func newFakePriv() *fakePriv {
	return &fakePriv{owners: map[string][2]int{}, nodes: map[string]fs.FileMode{}, xattrs: map[string]string{}}
}

func (p *fakePriv) Lchown(_ *os.Root, name string, uid, gid int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.owners[name] = [2]int{uid, gid}
	return nil
}

func (p *fakePriv) Mknod(root *os.Root, name string, mode fs.FileMode, major, minor uint32) error {
	p.mu.Lock()
	p.nodes[name] = mode
	p.mu.Unlock()
	return root.WriteFile(name, nil, 0o600)
}

func (p *fakePriv) Setxattr(f *os.File, attr string, value []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	rel := f.Name()
	p.xattrs[rel+" "+attr] = string(value)
	return nil
}

// logRecorder keeps log records for assertions.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if strings.Contains(r, substr) {
			return true
		}
	}
	return false
}

// testNative returns a Native that installs through fakes, logging to rec
// when given.
func testNative(t *testing.T, cache string, rec *logRecorder) (*Native, *fakeExec, *fakePriv) {
	t.Helper()
	log := logging.Discard()
	if rec != nil {
		log = slog.New(rec)
	}
	ex, priv := &fakeExec{}, newFakePriv()
	n := NewNative(run.New(log), log, cache)
	n.Exec, n.Priv = ex, priv
	n.Host = fakeHost{euid: 0, machine: "x86_64"}
	return n, ex, priv
}

func testOptions(mirror, keyring, target string) Options {
	return Options{Suite: "bookworm", Arch: "amd64", Variant: "minbase", Mirror: mirror, Components: []string{"main"},
		Keyring: keyring, MergedUsr: "auto", Target: target}
}

func task() *progress.Task { return progress.New(nil, false).Task("test", 0) }

func packageNames(ps []LockedPackage) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}
