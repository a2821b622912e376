package bootstrap

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"pault.ag/go/debian/deb"
	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
)

// debFile is a downloaded package as the installer sees it: the control
// fields of the .deb itself, which are what dpkg will go by.
type debFile struct {
	Path       string
	Name       string
	Version    string
	Essential  bool
	PreDepends string
	Depends    string
	Provides   string
	ver        version.Version
}

// readDeb reads a .deb's control fields.
func readDeb(path string) (*debFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := deb.Load(f, path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, filepath.Base(path), err)
	}
	defer d.Close()
	c := d.Control
	return &debFile{
		Path:       path,
		Name:       c.Package,
		Version:    c.Version.String(),
		Essential:  c.Values["Essential"] == "yes",
		PreDepends: c.Values["Pre-Depends"],
		Depends:    c.Values["Depends"],
		Provides:   c.Values["Provides"],
		ver:        c.Version,
	}, nil
}

// installSet answers dependency questions within the packages being
// installed: which member satisfies a relation.
type installSet struct {
	byName   map[string]*debFile
	provides map[string][]*debFile
	arch     dependency.Arch
}

func newInstallSet(debs []*debFile, arch string) *installSet {
	s := &installSet{byName: map[string]*debFile{}, provides: map[string][]*debFile{}}
	if a, err := dependency.ParseArch(arch); err == nil {
		s.arch = *a
	}
	for _, d := range debs {
		s.byName[d.Name] = d
		if d.Provides == "" {
			continue
		}
		if rel, err := dependency.Parse(d.Provides); err == nil {
			for _, p := range rel.GetAllPossibilities() {
				s.provides[p.Name] = append(s.provides[p.Name], d)
			}
		}
	}
	return s
}

// needs returns the members d's field (Depends or Pre-Depends) names: for
// each relation, the first alternative present in the set.
func (s *installSet) needs(field string) []*debFile {
	if strings.TrimSpace(field) == "" {
		return nil
	}
	rel, err := dependency.Parse(field)
	if err != nil {
		return nil
	}
	var out []*debFile
	for _, r := range rel.Relations {
	alts:
		for _, p := range r.Possibilities {
			if p.Architectures != nil && !p.Architectures.Matches(&s.arch) {
				continue
			}
			if m, ok := s.byName[p.Name]; ok && fits(m.ver, p.Version) {
				out = append(out, m)
				break
			}
			for _, m := range s.provides[p.Name] {
				out = append(out, m)
				break alts
			}
		}
	}
	return out
}

// installPlan splits the packages in the order they are installed.
type installPlan struct {
	// Core are the essential packages and what they need: extracted by
	// hand, then installed by one dpkg run that cannot yet honour
	// dependencies (there is no dpkg database before it).
	Core []*debFile
	// Layers are installed one dpkg run each, in order; a package's
	// Pre-Depends are always in an earlier run (or in Core), its Depends
	// in the same run or an earlier one.
	Layers [][]*debFile
}

// coreFirst is debootstrap's order for the first packages: base-passwd
// makes /etc/passwd for every later one, and awk, perl and debconf are
// what maintainer scripts run.
var coreFirst = []string{"base-passwd", "base-files", "dpkg", "libc6", "perl-base", "mawk"}

// planInstall orders debs for installation.
func planInstall(debs []*debFile, arch string) (*installPlan, error) {
	set := newInstallSet(debs, arch)
	sorted := slices.Clone(debs)
	slices.SortFunc(sorted, func(a, b *debFile) int { return cmp.Compare(a.Name, b.Name) })

	// The core: Essential packages closed over their dependencies, and
	// mawk, which debootstrap installs first too (maintainer scripts of
	// the essential set call awk before anything provides it).
	core := map[string]bool{}
	var queue []*debFile
	for _, d := range sorted {
		if d.Essential || d.Name == "mawk" {
			core[d.Name] = true
			queue = append(queue, d)
		}
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		for _, m := range append(set.needs(d.PreDepends), set.needs(d.Depends)...) {
			if !core[m.Name] {
				core[m.Name] = true
				queue = append(queue, m)
			}
		}
	}
	plan := &installPlan{}
	for _, name := range coreFirst {
		if d, ok := set.byName[name]; ok && core[name] {
			plan.Core = append(plan.Core, d)
		}
	}
	for _, d := range topoOrder(sorted, set, core) {
		if !slices.Contains(coreFirst, d.Name) {
			plan.Core = append(plan.Core, d)
		}
	}

	// Layers for the rest: longest path where a Pre-Depends edge adds
	// one layer and a Depends edge none.
	var rest []*debFile
	for _, d := range sorted {
		if !core[d.Name] {
			rest = append(rest, d)
		}
	}
	layer := map[string]int{}
	for iter := 0; ; iter++ {
		if iter > len(rest)+1 {
			return nil, fmt.Errorf("%w: the Pre-Depends of %s form a loop", ErrUnsatisfiable, names(rest))
		}
		changed := false
		for _, d := range rest {
			l := layer[d.Name]
			for _, m := range set.needs(d.Depends) {
				if !core[m.Name] && layer[m.Name] > l {
					l = layer[m.Name]
				}
			}
			for _, m := range set.needs(d.PreDepends) {
				if !core[m.Name] && layer[m.Name]+1 > l {
					l = layer[m.Name] + 1
				}
			}
			if l != layer[d.Name] {
				layer[d.Name] = l
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	for _, d := range rest {
		l := layer[d.Name]
		for len(plan.Layers) <= l {
			plan.Layers = append(plan.Layers, nil)
		}
		plan.Layers[l] = append(plan.Layers[l], d)
	}
	for i, l := range plan.Layers {
		plan.Layers[i] = topoOrder(l, set, nil)
	}
	return plan, nil
}

// topoOrder returns the members of debs selected by in (all when nil),
// dependencies before the packages that need them where the graph allows
// (it has cycles), ties by name.
func topoOrder(debs []*debFile, set *installSet, in map[string]bool) []*debFile {
	member := map[string]bool{}
	for _, d := range debs {
		if in == nil || in[d.Name] {
			member[d.Name] = true
		}
	}
	var out []*debFile
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(d *debFile)
	visit = func(d *debFile) {
		if state[d.Name] != 0 {
			return
		}
		state[d.Name] = 1
		for _, m := range append(set.needs(d.PreDepends), set.needs(d.Depends)...) {
			if member[m.Name] {
				visit(m)
			}
		}
		state[d.Name] = 2
		out = append(out, d)
	}
	for _, d := range debs {
		if member[d.Name] {
			visit(d)
		}
	}
	return out
}

func names(debs []*debFile) string {
	n := make([]string, len(debs))
	for i, d := range debs {
		n[i] = d.Name
	}
	return strings.Join(n, " ")
}

// target describes the system being installed.
type target struct {
	Root string
	Arch string
	// Merged makes /bin, /lib, /sbin... links into /usr.
	Merged bool
	// SkipUsrMergeFlag writes /etc/unsupported-skip-usrmerge-conversion:
	// an unmerged system of a suite that expects merged /usr, made so on
	// purpose (debootstrap does the same).
	SkipUsrMergeFlag bool
	// UnsafeIO is dpkg's --force-unsafe-io, which dpkg before 1.15.8.6
	// (lenny's) does not know.
	UnsafeIO bool
	// Sources is the line written to /etc/apt/sources.list.
	Sources string
}

// installer puts packages into a target: the core extracted by hand, then
// everything installed by dpkg inside the target.
type installer struct {
	log    *slog.Logger
	runner *run.Runner
	priv   Privileged
	exec   chroot.Executor
	task   *progress.Task
}

// debDir is where the packages are put inside the target while dpkg
// installs them.
const debDir = "var/cache/krgimage-bootstrap"

func (in *installer) install(ctx context.Context, t target, plan *installPlan) (err error) {
	root, err := os.OpenRoot(t.Root)
	if err != nil {
		return err
	}
	defer root.Close()

	start := time.Now()
	in.stage("Extracting the essential packages")
	if err := in.extractAll(root, t, plan.Core); err != nil {
		return err
	}
	if t.Merged {
		if err := linkUsrAliases(root); err != nil {
			return fmt.Errorf("merging /usr: %w", err)
		}
	}
	if err := in.scaffold(root, t); err != nil {
		return err
	}
	in.log.Debug("essential packages extracted", "elapsed", time.Since(start).Round(time.Millisecond), "packages", len(plan.Core))

	all := slices.Clone(plan.Core)
	for _, l := range plan.Layers {
		all = append(all, l...)
	}
	inTarget, err := in.stageDebs(root, all)
	defer func() {
		if rerr := root.RemoveAll(debDir); err == nil {
			err = rerr
		}
	}()
	if err != nil {
		return err
	}

	s, err := chroot.Open(ctx, &chroot.Image{Root: t.Root, Log: in.log, Runner: in.runner, Exec: in.exec, SuppressSync: true})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}()
	dpkg := []string{"dpkg"}
	if t.UnsafeIO {
		// The image is not in use: if the machine crashes now, the
		// build is redone anyway, so fsync buys nothing.
		dpkg = append(dpkg, "--force-unsafe-io")
	}
	if err := s.RunCommand(ctx, chroot.Command{Argv: []string{"ldconfig"}}); err != nil {
		return fmt.Errorf("ldconfig: %w", err)
	}
	total := int64(len(all))
	var done int64
	in.task.SetTotal(total * 2)
	count := func(line string) {
		if strings.HasPrefix(line, "Unpacking ") || strings.HasPrefix(line, "Setting up ") {
			done++
			in.task.SetCurrent(done)
			in.task.SetLabel(strings.ToLower(strings.TrimSuffix(strings.SplitN(line, " (", 2)[0], " ...")))
		}
	}

	if len(plan.Core) > 0 {
		in.stage("Installing core packages")
		argv := append(slices.Clone(dpkg), "--install", "--force-depends")
		for _, d := range plan.Core {
			argv = append(argv, inTarget[d.Name])
		}
		if err := s.RunCommand(ctx, chroot.Command{Argv: argv, Line: count}); err != nil {
			return fmt.Errorf("installing the core packages: %w", err)
		}
	}

	restore, err := fakeStartStopDaemon(root)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := restore(); err == nil {
			err = rerr
		}
	}()
	for i, l := range plan.Layers {
		in.stage("Configuring required packages", "run", i+1, "of", len(plan.Layers), "packages", len(l))
		// --force-overwrite and --force-confold as debootstrap installs
		// its base packages: a file moved between packages must not fail
		// the bootstrap, and no configuration prompt can be answered.
		argv := append(slices.Clone(dpkg), "--install", "--force-overwrite", "--force-confold")
		for _, d := range l {
			argv = append(argv, inTarget[d.Name])
		}
		if err := s.RunCommand(ctx, chroot.Command{Argv: argv, Line: count}); err != nil {
			return fmt.Errorf("installing %d packages (%s...): %w", len(l), l[0].Name, err)
		}
	}
	out, err := s.Output(ctx, "dpkg", "--audit")
	if err != nil {
		return fmt.Errorf("dpkg --audit: %w", err)
	}
	if len(strings.TrimSpace(string(out))) > 0 {
		return fmt.Errorf("the installed system is inconsistent: dpkg --audit reports:\n%s", out)
	}
	return nil
}

func (in *installer) stage(msg string, args ...any) {
	in.log.Info(msg, args...)
	in.task.SetLabel(strings.ToLower(msg))
}

// extractAll extracts the data archives of debs, several at once: no two
// essential packages ship the same file, and dpkg unpacks each again
// afterwards and so settles any overlap.
func (in *installer) extractAll(root *os.Root, t target, debs []*debFile) error {
	x := &extractor{root: root, priv: in.priv, merged: t.Merged, skip: skipUnused}
	jobs := make(chan int)
	errs := make([]error, len(debs))
	var wg sync.WaitGroup
	// Twice the cores: each worker waits on its dpkg-deb half the time.
	for range max(1, min(2*runtime.GOMAXPROCS(0), len(debs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				errs[i] = extractDeb(x, debs[i])
			}
		}()
	}
	for i := range debs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return errors.Join(errs...)
}

// extractDeb unpacks a package's data archive. The host's dpkg-deb, when
// there is one, decompresses it: Go's xz decoder took three times the CPU
// of liblzma, and the essential set's xz archives were the native
// bootstrap's largest cost after dpkg itself. The archive was checked
// against its SHA256 before, so the host tool only reads verified bytes.
func extractDeb(x *extractor, d *debFile) error {
	if dpkgDeb() != "" {
		entries, err := extractWithDpkgDeb(x, d)
		if err == nil || entries > 0 {
			return err
		}
		// Nothing written yet: a host dpkg-deb too old for this
		// package's compression leaves it to the Go decoders.
	}
	f, err := os.Open(d.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	pkg, err := deb.Load(f, d.Path)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, d.Name, err)
	}
	defer pkg.Close()
	return x.extract(pkg.Data, d.Name)
}

// dpkgDeb is the host's dpkg-deb, or "" when it has none.
var dpkgDeb = sync.OnceValue(func() string {
	p, err := run.LookSbin("dpkg-deb")
	if err != nil {
		return ""
	}
	return p
})

// extractWithDpkgDeb extracts the tar stream `dpkg-deb --fsys-tarfile`
// writes, and reports how many entries it extracted.
func extractWithDpkgDeb(x *extractor, d *debFile) (int, error) {
	cmd := exec.Command(dpkgDeb(), "--fsys-tarfile", d.Path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	br := bufio.NewReaderSize(out, 256<<10)
	entries, err := x.extractCounting(tar.NewReader(br), d.Name)
	if err == nil {
		// The tar reader stops at the end-of-archive blocks; the record
		// padding after them must be read too, or dpkg-deb could block
		// writing it and Wait with it.
		_, err = io.Copy(io.Discard, br)
	}
	if err != nil {
		// Let dpkg-deb end on a closed pipe rather than block.
		out.Close()
	}
	werr := cmd.Wait()
	if err == nil && werr != nil {
		err = fmt.Errorf("%w: %s: dpkg-deb --fsys-tarfile: %v: %s", ErrMalformed, d.Name, werr, strings.TrimSpace(stderr.String()))
	}
	return entries, err
}

// scaffold creates what dpkg and the maintainer scripts expect before the
// first dpkg run: an empty database, the basic device nodes, fstab.
func (in *installer) scaffold(root *os.Root, t target) error {
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/lib/dpkg/alternatives", "etc", "dev/pts", "dev/shm", "proc", "sys", "tmp"} {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := root.Chmod("tmp", fs.ModeSticky|0o777); err != nil {
		return err
	}
	files := []struct {
		name, data string
	}{
		{"var/lib/dpkg/status", ""},
		{"var/lib/dpkg/available", ""},
		// dselect's access method, as debootstrap sets it.
		{"var/lib/dpkg/cmethopt", "apt apt\n"},
		{"etc/fstab", "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"},
	}
	if t.SkipUsrMergeFlag {
		files = append(files, struct{ name, data string }{"etc/unsupported-skip-usrmerge-conversion", "this system will not be supported in the future\n"})
	}
	if t.Sources != "" {
		if err := root.MkdirAll("etc/apt", 0o755); err != nil {
			return err
		}
		files = append(files, struct{ name, data string }{"etc/apt/sources.list", t.Sources + "\n"})
	}
	for _, f := range files {
		if _, err := root.Lstat(f.name); err == nil {
			continue
		}
		if err := root.WriteFile(f.name, []byte(f.data), 0o644); err != nil {
			return err
		}
	}
	// Until mawk's postinst registers the awk alternative, scripts that
	// call awk find mawk through this link (debootstrap makes it too).
	if _, err := root.Lstat("usr/bin/awk"); errors.Is(err, fs.ErrNotExist) {
		if _, err := root.Lstat("usr/bin/mawk"); err == nil {
			if err := root.Symlink("mawk", "usr/bin/awk"); err != nil {
				return err
			}
		}
	}
	return makeDevices(root, in.priv)
}

// makeDevices creates debootstrap's static /dev: the devices a chroot may
// use, and links to /proc for the standard streams.
func makeDevices(root *os.Root, priv Privileged) error {
	devs := []struct {
		name         string
		major, minor uint32
	}{
		{"console", 5, 1}, {"full", 1, 7}, {"null", 1, 3}, {"ptmx", 5, 2},
		{"random", 1, 8}, {"tty", 5, 0}, {"urandom", 1, 9}, {"zero", 1, 5},
	}
	for _, d := range devs {
		name := "dev/" + d.name
		if _, err := root.Lstat(name); err == nil {
			continue
		}
		if err := priv.Mknod(root, name, fs.ModeDevice|fs.ModeCharDevice|0o666, d.major, d.minor); err != nil {
			return fmt.Errorf("creating /%s: %w", name, err)
		}
		// mknod applies the umask.
		if err := root.Chmod(name, 0o666); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if _, err := root.Lstat("dev/" + name); err == nil {
			continue
		}
		if err := root.Symlink(target, "dev/"+name); err != nil {
			return err
		}
	}
	return nil
}

// stageDebs makes the packages visible inside the target (hard links into
// the cache where the file system allows) and returns their paths there.
func (in *installer) stageDebs(root *os.Root, debs []*debFile) (map[string]string, error) {
	if err := root.MkdirAll(debDir, 0o755); err != nil {
		return nil, err
	}
	dir := filepath.Join(root.Name(), debDir)
	out := map[string]string{}
	for _, d := range debs {
		base := d.Name + ".deb"
		dst := filepath.Join(dir, base)
		if err := os.Link(d.Path, dst); err != nil {
			if err := copyFile(d.Path, dst, -1); err != nil {
				return nil, err
			}
		}
		out[d.Name] = "/" + debDir + "/" + base
	}
	return out, nil
}

// fakeStartStopDaemon replaces start-stop-daemon with a script that starts
// nothing while packages are configured, as debootstrap does: policy-rc.d
// stops invoke-rc.d, but some maintainer scripts call start-stop-daemon
// directly.
func fakeStartStopDaemon(root *os.Root) (func() error, error) {
	name := ""
	for _, p := range []string{"usr/sbin/start-stop-daemon", "sbin/start-stop-daemon"} {
		if fi, err := root.Lstat(p); err == nil && fi.Mode().IsRegular() {
			name = p
			break
		}
	}
	if name == "" {
		return func() error { return nil }, nil
	}
	real := name + ".REAL"
	if err := root.Rename(name, real); err != nil {
		return nil, err
	}
	script := "#!/bin/sh\necho\necho \"Warning: Fake start-stop-daemon called, doing nothing\"\n"
	if err := root.WriteFile(name, []byte(script), 0o755); err != nil {
		root.Rename(real, name)
		return nil, err
	}
	return func() error {
		if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return root.Rename(real, name)
	}, nil
}
