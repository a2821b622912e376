package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/krgimage/krgimage/bootstrap"
	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/kernel"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/stagecache"
)

// kernelStep installs the nodes' kernel: a package inside the image, or a
// source tree built on the host (installed with DESTDIR) or inside it.
type kernelStep struct {
	// configTree is the tree whose .config the build used.
	configTree string
}

func (*kernelStep) Name() string { return "kernel" }

func (*kernelStep) sources(r *recipes.Recipe) kernel.Sources {
	k := r.Kernel
	path := func(p string) string {
		if p == "" || kernel.IsURL(p) {
			return p
		}
		return r.Path(p)
	}
	return kernel.Sources{Source: path(k.Source), SHA256: k.SHA256, Linux: path(k.Linux), Config: path(k.Config)}
}

// nativeInitramfs reports whether krgimage writes the initramfs itself, in
// which case the kernel package must not spend half a minute making one
// with initramfs-tools.
func nativeInitramfs(r *recipes.Recipe) bool {
	return r.Initramfs != nil && r.Initramfs.Generator == "native"
}

func (s *kernelStep) buildOptions(env *Env) kernel.BuildOptions {
	k := env.Recipe.Kernel
	o := kernel.BuildOptions{Configure: k.Configure, Targets: k.Targets, Jobs: k.Jobs, Env: k.Env, DestDir: env.FinalRoot}
	// Run fills in the real trees; these stand-ins are what the plan shows.
	if env.Recipe.Kernel.Linux != "" {
		o.Linux = "<the Linux tree>"
	}
	if k.Mode == "chroot" {
		o.DestDir = "/"
	}
	return o
}

func (s *kernelStep) Describe(env *Env) []string {
	k := env.Recipe.Kernel
	var out []string
	if k.Package != "" {
		line := "apt-get install --no-install-recommends " + k.Package
		if nativeInitramfs(env.Recipe) {
			line += " (INITRD=No: krgimage writes the initramfs itself)"
		}
		out = append(out, line)
		if early(env.Recipe) {
			out = append(out, "after the last provisioning entry that can change its installation, so that a change to a later one does not install it again")
		}
	} else {
		src := s.sources(env.Recipe)
		what := "unpack " + src.Source
		if kernel.IsURL(src.Source) {
			what = "download " + src.Source + " (sha256 " + k.SHA256 + ") and unpack it"
		}
		where := "on the build host, installed with DESTDIR=" + env.FinalRoot
		if k.Mode == "chroot" {
			where = "inside the image, under /usr/src/krgimage-kernel"
		}
		out = append(out, what+"; build "+where)
		if src.Linux != "" {
			out = append(out, "Linux tree: "+src.Linux)
		}
		if src.Config != "" {
			out = append(out, "configuration: "+src.Config)
		}
		for _, st := range s.buildOptions(env).Steps() {
			out = append(out, "  "+st)
		}
	}
	v := "VERSION"
	if k.Version != "" {
		v = k.Version
	}
	return append(out, "find the installed version; depmod -b ROOT "+v+"; check /boot/vmlinuz-"+v+" and /lib/modules/"+v+"/modules.dep")
}

func (*kernelStep) Validate(context.Context, *Env) error { return nil }

func (s *kernelStep) Preflight(_ context.Context, env *Env) error {
	k := env.Recipe.Kernel
	var errs []error
	if _, err := os.Stat("/usr/sbin/depmod"); err != nil {
		if _, err := os.Stat("/sbin/depmod"); err != nil {
			errs = append(errs, errors.New("depmod not found: install kmod on the build host"))
		}
	}
	if k.Package != "" {
		return errors.Join(errs...)
	}
	src := s.sources(env.Recipe)
	for _, p := range []struct{ key, path string }{{"kernel.source", src.Source}, {"kernel.linux", src.Linux}, {"kernel.config", src.Config}} {
		if p.path == "" || kernel.IsURL(p.path) {
			continue
		}
		if _, err := os.Stat(p.path); err != nil {
			errs = append(errs, env.Recipe.Errorf(p.key, recipes.ErrMissing, "%v", err))
		}
	}
	tools := []string{"tar"}
	if k.Mode != "chroot" {
		tools = append(tools, "make")
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			errs = append(errs, fmt.Errorf("%s not found on the build host: install it", t))
		}
	}
	if m := bootstrap.SystemHost().Machine(); env.Recipe.Architecture == "amd64" && (m == "i386" || m == "i486" || m == "i586" || m == "i686") {
		errs = append(errs, fmt.Errorf("an amd64 kernel (Kerrighed's 2.6.30 included) needs a 64-bit build host; this one is %s", m))
	}
	return errors.Join(errs...)
}

func (s *kernelStep) Run(ctx context.Context, env *Env) error {
	k := env.Recipe.Kernel
	before, err := kernel.Versions(env.Root)
	if err != nil {
		return err
	}
	switch {
	case k.Package != "":
		err = s.installPackage(ctx, env)
	case k.Mode == "chroot":
		err = s.buildInChroot(ctx, env)
	default:
		err = s.buildOnHost(ctx, env)
	}
	if err != nil {
		return err
	}
	if k.Source != "" {
		if v, err := kernel.NameInstalled(env.Root, ""); err != nil {
			return err
		} else if v != "" {
			env.Log.Info("named the unversioned /boot/vmlinuz after the version in its header", "version", v)
		}
	}
	after, err := kernel.Versions(env.Root)
	if err != nil {
		return err
	}
	if len(after) == 0 {
		return fmt.Errorf("%w: the installation put no vmlinuz-* in the image's /boot", kernel.ErrNoKernel)
	}
	version, err := kernel.Resolve(env.Root, k.Version)
	if err != nil {
		return err
	}
	if s.configTree != "" {
		if err := kernel.InstallConfig(env.Root, version, filepath.Join(s.configTree, ".config")); err != nil {
			return err
		}
	}
	if err := kernel.Depmod(ctx, env.Runner, env.Root, version); err != nil {
		return fmt.Errorf("depmod: %w", err)
	}
	if err := kernel.Check(env.Root, version); err != nil {
		return err
	}
	env.State.KernelVersion = version
	env.Log.Info("kernel installed", "version", version, "new", strings.Join(newOnes(before, after), ","))
	return nil
}

func newOnes(before, after []string) []string {
	old := map[string]bool{}
	for _, v := range before {
		old[v] = true
	}
	var out []string
	for _, v := range after {
		if !old[v] {
			out = append(out, v)
		}
	}
	return out
}

func (s *kernelStep) session(ctx context.Context, env *Env) (*chroot.Session, error) {
	return chroot.Open(ctx, env.chrootImage())
}

func (s *kernelStep) installPackage(ctx context.Context, env *Env) (err error) {
	sess, err := s.session(ctx, env)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, sess.Close()) }()
	var extra []string
	if nativeInitramfs(env.Recipe) {
		extra = append(extra, "INITRD=No")
	}
	return sess.Install(ctx, []string{env.Recipe.Kernel.Package}, false, extra...)
}

func (s *kernelStep) fetcher(env *Env) *kernel.Fetcher {
	return &kernel.Fetcher{HTTP: &http.Client{Timeout: 30 * time.Minute}, Runner: env.Runner, Log: env.Log,
		Downloads: filepath.Join(env.CacheDir, "downloads")}
}

func (s *kernelStep) buildLog(env *Env) (*os.File, error) {
	dir := env.layout().Logs()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "kernel-build.log"))
	if err == nil {
		env.Log.Info("build log", "path", filepath.Join(env.finalLayout().Logs(), "kernel-build.log"))
	}
	return f, err
}

func (s *kernelStep) buildOnHost(ctx context.Context, env *Env) error {
	tree, err := s.fetcher(env).Prepare(ctx, s.sources(env.Recipe), filepath.Join(env.CacheDir, "kernel"), true)
	if err != nil {
		return err
	}
	if tree.Reused {
		env.Log.Info("reusing the build tree: make redoes only what changed", "path", tree.Dir)
	}
	logf, err := s.buildLog(env)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.configTree = cmp.Or(tree.Linux, tree.Dir)
	o := s.buildOptions(env)
	o.Dir, o.HostDir, o.Linux, o.DestDir, o.Log = tree.Dir, tree.Dir, tree.Linux, env.Root, logf
	hostExec := func(ctx context.Context, argv []string, dir string, extra []string, line func(string)) error {
		return env.Runner.Run(ctx, run.Cmd{Path: argv[0], Args: argv[1:], Dir: dir, Env: extra, Line: line})
	}
	return kernel.Build(ctx, hostExec, o)
}

func (s *kernelStep) buildInChroot(ctx context.Context, env *Env) (err error) {
	base := filepath.Join(env.Root, "usr/src/krgimage-kernel")
	tree, err := s.fetcher(env).Prepare(ctx, s.sources(env.Recipe), base, false)
	if err != nil {
		return err
	}
	logf, err := s.buildLog(env)
	if err != nil {
		return err
	}
	defer logf.Close()
	sess, err := s.session(ctx, env)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, sess.Close()) }()
	inImage := func(p string) string {
		if p == "" {
			return ""
		}
		return "/" + strings.TrimPrefix(strings.TrimPrefix(p, env.Root), "/")
	}
	s.configTree = cmp.Or(tree.Linux, tree.Dir)
	o := s.buildOptions(env)
	o.Dir, o.HostDir, o.Linux, o.DestDir, o.Log = inImage(tree.Dir), tree.Dir, inImage(tree.Linux), "/", logf
	chrootExec := func(ctx context.Context, argv []string, dir string, extra []string, line func(string)) error {
		return sess.RunCommand(ctx, chroot.Command{Argv: argv, Dir: dir, Env: extra, Line: line})
	}
	return kernel.Build(ctx, chrootExec, o)
}

func (s *kernelStep) addKey(_ context.Context, env *Env, k *stagecache.Key, _ *releases) error {
	r := env.Recipe
	k.AddBytes("kernel", canonical(r.Kernel))
	k.Add("native-initramfs", strconv.FormatBool(nativeInitramfs(r)))
	k.AddBytes("context", recipeContext(env))
	src := s.sources(r)
	for _, in := range []struct{ name, path string }{{"source", src.Source}, {"linux", src.Linux}, {"config", src.Config}} {
		switch {
		case in.path == "":
		case kernel.IsURL(in.path):
			// The recipe's sha256 names the content.
			k.Add(in.name, in.path)
		default:
			if err := k.AddPath(in.name, in.path); err != nil {
				return err
			}
		}
	}
	return nil
}
