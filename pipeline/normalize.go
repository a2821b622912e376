package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/krgimage/krgimage/chroot"
)

// normalizeVersion changes when normalization does, so that finished
// roots normalized the old way stop matching.
const normalizeVersion = "1"

// NormalizeReport says what normalization did to the image root.
type NormalizeReport struct {
	Seconds float64 `json:"seconds"`
	// Removed lists what was removed or emptied, as patterns.
	Removed []string `json:"removed,omitempty"`
	// Clamped counts the entries whose times were set back to
	// SOURCE_DATE_EPOCH.
	Clamped int `json:"clamped"`
	// Skipped says why normalization did not run.
	Skipped string `json:"skipped,omitempty"`
}

// volatile is what Debian leaves in a root that differs from build to
// build and that a node does not need, as mmdebstrap and the
// reproducible-builds project remove it: APT's downloaded lists and
// caches (an image updates its lists before installing more), logs of
// the installation, ldconfig's auxiliary cache (inode numbers and change
// times), Python's byte-code caches (rebuilt on use), and state that
// must be per node or per boot.
var volatile = []string{
	"var/cache/apt/*.bin",
	"var/cache/apt/archives/*.deb",
	"var/cache/apt/archives/partial/*",
	"var/lib/apt/lists/*_*",
	"var/lib/apt/lists/partial/*",
	"var/lib/apt/lists/auxfiles/*",
	"var/log/dpkg.log",
	"var/log/alternatives.log",
	"var/log/bootstrap.log",
	"var/log/apt/history.log",
	"var/log/apt/term.log",
	"var/log/apt/eipp.log.xz",
	"var/cache/ldconfig/aux-cache",
	"var/cache/man/*",
	"var/cache/fontconfig/*",
	"var/lib/systemd/random-seed",
	"var/lib/dbus/machine-id",
}

// normalize makes the image root a function of the recipe, the package
// indices and SOURCE_DATE_EPOCH: it removes what is volatile, empties
// /etc/machine-id, regenerates ld.so.cache, and sets every time and
// password change date later than SOURCE_DATE_EPOCH back to it. It runs
// once, after the last step that changes the root.
func normalize(ctx context.Context, env *Env) (*NormalizeReport, error) {
	rep := &NormalizeReport{}
	if _, err := os.Lstat(env.Root); errors.Is(err, fs.ErrNotExist) {
		rep.Skipped = "no image root"
		return rep, nil
	}
	root, err := os.OpenRoot(env.Root)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if _, err := root.Lstat("var/lib/dpkg/status"); err == nil {
		if err := normalizeDebian(ctx, env, root, rep); err != nil {
			return nil, err
		}
	}
	if env.SourceDateEpoch != nil {
		n, err := clampTimes(ctx, env.Root, *env.SourceDateEpoch)
		if err != nil {
			return nil, fmt.Errorf("clamping times: %w", err)
		}
		rep.Clamped = n
	}
	return rep, nil
}

func normalizeDebian(ctx context.Context, env *Env, root *os.Root, rep *NormalizeReport) error {
	for _, pattern := range volatile {
		matches, err := fs.Glob(root.FS(), pattern)
		if err != nil {
			return err
		}
		for _, m := range matches {
			if pattern == "var/lib/dbus/machine-id" {
				// A link to /etc/machine-id is what dbus wants.
				if fi, err := root.Lstat(m); err != nil || fi.Mode()&fs.ModeSymlink != 0 {
					continue
				}
			}
			if err := root.RemoveAll(m); err != nil {
				return fmt.Errorf("removing /%s: %w", m, err)
			}
		}
		if len(matches) > 0 {
			rep.Removed = append(rep.Removed, "/"+pattern)
		}
	}
	n, err := removePycache(root)
	if err != nil {
		return err
	}
	if n > 0 {
		rep.Removed = append(rep.Removed, "/usr/**/__pycache__")
	}
	// An empty machine-id makes each node generate its own at boot.
	if fi, err := root.Lstat("etc/machine-id"); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		if err := truncate(root, "etc/machine-id"); err != nil {
			return err
		}
		rep.Removed = append(rep.Removed, "/etc/machine-id (emptied)")
	}
	if err := regenerateLdCache(ctx, env, root); err != nil {
		return fmt.Errorf("regenerating ld.so.cache: %w", err)
	}
	if env.SourceDateEpoch != nil {
		days := env.SourceDateEpoch.Unix() / int64(24*time.Hour/time.Second)
		for _, p := range []string{"etc/shadow", "etc/shadow-"} {
			if err := clampShadow(root, p, days); err != nil {
				return fmt.Errorf("/%s: %w", p, err)
			}
		}
	}
	return nil
}

func truncate(root *os.Root, name string) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// removePycache removes Python's __pycache__ directories under /usr:
// their content depends on the order the interpreter met objects in.
func removePycache(root *os.Root) (int, error) {
	var dirs []string
	err := fs.WalkDir(root.FS(), "usr", func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == "usr" {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "__pycache__" {
			dirs = append(dirs, p)
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		if err := root.RemoveAll(d); err != nil {
			return 0, err
		}
	}
	return len(dirs), nil
}

// regenerateLdCache runs the image's own ldconfig, whose output depends
// only on the libraries (its aux-cache, which does not, is removed).
func regenerateLdCache(ctx context.Context, env *Env, root *os.Root) error {
	if _, err := root.Lstat("etc/ld.so.cache"); err != nil {
		return nil
	}
	found := slices.ContainsFunc([]string{"sbin/ldconfig", "usr/sbin/ldconfig"}, func(p string) bool {
		_, err := root.Stat(p)
		return err == nil
	})
	if !found {
		return nil
	}
	sess, err := chroot.Open(ctx, env.chrootImage())
	if err != nil {
		return err
	}
	err = sess.Run(ctx, "ldconfig")
	if cerr := sess.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := root.RemoveAll("var/cache/ldconfig/aux-cache"); err != nil {
		return err
	}
	return nil
}

// clampShadow sets back password change dates (the third field, in days
// since 1970) later than days: passwd's postinst writes today's.
func clampShadow(root *os.Root, name string, days int64) error {
	b, err := root.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(b), "\n")
	changed := false
	for i, l := range lines {
		f := strings.Split(l, ":")
		if len(f) < 3 {
			continue
		}
		if d, err := strconv.ParseInt(f[2], 10, 64); err == nil && d > days {
			f[2] = strconv.FormatInt(days, 10)
			lines[i] = strings.Join(f, ":")
			changed = true
		}
	}
	if !changed {
		return nil
	}
	// In place: the file keeps its owner and mode.
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strings.Join(lines, "")); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// normalizeStep runs normalize once the last step that changes the root is
// done, unless the root came finished from the stage cache, and has the
// cache store the finished root. The build adds it to the recipe's steps;
// build.json's "normalize" is its report.
type normalizeStep struct {
	cache *stageCache
	rep   *Report
	clock func() time.Time
	// archiveFollows: the snapshot step follows, whose archive is the
	// finished root's cache entry.
	archiveFollows bool
	// finished, if set, is told once the root is final.
	finished func()
}

func (*normalizeStep) added() {}

func (*normalizeStep) Name() string { return "normalize" }

func (*normalizeStep) Describe(*Env) []string { return nil }

func (*normalizeStep) Validate(context.Context, *Env) error { return nil }

func (s *normalizeStep) Run(ctx context.Context, env *Env) error {
	if s.cache.normalized {
		s.rep.Normalize = &NormalizeReport{Skipped: "the root came finished from the stage cache"}
	} else {
		start := s.clock()
		nr, err := normalize(ctx, env)
		if err != nil {
			return fmt.Errorf("normalizing the image root: %w", err)
		}
		took := s.clock().Sub(start)
		nr.Seconds = took.Seconds()
		s.rep.Normalize = nr
		env.Log.Info("root normalized", "clamped", nr.Clamped, "removed", len(nr.Removed), "elapsed", took.Round(time.Millisecond))
		s.cache.finishedRoot(ctx, env, took, s.archiveFollows)
	}
	if s.finished != nil {
		s.finished()
	}
	return nil
}

// withNormalize is the recipe's steps with normalization in its place:
// after the last step that changes the image root. rootFinished is told
// when the root is final and steps that only read it follow.
func withNormalize(steps []BuildStep, cache *stageCache, rep *Report, clock func() time.Time, rootFinished func()) []scheduled {
	at := min(cache.last+1, len(steps))
	norm := &normalizeStep{cache: cache, rep: rep, clock: clock,
		archiveFollows: slices.ContainsFunc(steps[at:], func(s BuildStep) bool { _, ok := s.(archiver); return ok })}
	if at < len(steps) {
		norm.finished = rootFinished
	}
	list := make([]scheduled, 0, len(steps)+1)
	for i, s := range steps {
		if i == at {
			list = append(list, scheduled{norm, -1})
		}
		list = append(list, scheduled{s, i})
	}
	if at == len(steps) {
		list = append(list, scheduled{norm, -1})
	}
	return list
}
