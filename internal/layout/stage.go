package layout

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/krgimage/krgimage/internal/fsutil"
)

// ErrRefuseReplace: the output path holds something krgimage did not
// build, which it will not delete.
var ErrRefuseReplace = errors.New("refusing to replace")

// Stage is a build in progress: it writes into Staging, under locks, and
// takes Final's names when done.
type Stage struct {
	Final, Staging Layout
	locks          []*fsutil.Lock
	// rootSynced reports the end of SyncRoot's writeback.
	rootSynced chan error
	// SharedWith is the previous image root when the staging root's files
	// are hard links to its own.
	SharedWith string
}

// Prepare locks final's staging directories and clears what a crashed or
// --keep-failed build left in them. ours says that the output directory
// holds a previous krgimage build (it has a build.json); ownRoot that
// final's external root is that build's.
func Prepare(final Layout, ours, ownRoot bool) (_ *Stage, err error) {
	s := &Stage{Final: final, Staging: final.Staging()}
	defer func() {
		if err != nil {
			s.Unlock()
		}
	}()
	out, root := final.Out(), final.Rootfs()
	for _, p := range []string{out, root} {
		if p == "/" || p == filepath.Dir(p) {
			return nil, fmt.Errorf("%w /: choose a dedicated directory", ErrRefuseReplace)
		}
	}
	if err := CheckReplaceable(out, ours, "it is not a previous krgimage output (it has no "+BuildJSONName+")"); err != nil {
		return nil, err
	}
	if final.External() {
		if err := CheckReplaceable(root, ownRoot, "it is not the image root of the previous build in "+out); err != nil {
			return nil, err
		}
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	if err := s.clear(); err != nil {
		return nil, err
	}
	if err := os.Mkdir(s.Staging.Out(), 0o755); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stage) lock() error {
	outLock, rootLock := s.Final.Locks()
	what := []struct{ path, lock, msg string }{{s.Final.Out(), outLock, "output %s is being written by another build: %w"}}
	if s.Final.External() {
		what = append(what, struct{ path, lock, msg string }{s.Final.Rootfs(), rootLock, "image root %s is being written by another build: %w"})
	}
	for _, w := range what {
		if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
			return err
		}
		lk, err := fsutil.TryLock(w.lock)
		if err != nil {
			return fmt.Errorf(w.msg, w.path, err)
		}
		s.locks = append(s.locks, lk)
	}
	return nil
}

// clear removes a staging directory left by a crashed or --keep-failed
// build: it is ours to clear, we hold the lock. So is the one of a killed
// restore of the stage cache into an image root outside the output.
func (s *Stage) clear() error {
	stageRoot := s.Staging.Rootfs()
	left := []string{s.Staging.Out(), stageRoot}
	if s.Final.External() {
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(stageRoot), "."+filepath.Base(stageRoot)+".restore-*"))
		left = append(left, m...)
	}
	for _, p := range left {
		if err := fsutil.RemoveAll(p); err != nil {
			return fmt.Errorf("clearing the previous staging directory: %w", err)
		}
	}
	return nil
}

// CheckReplaceable refuses to replace path unless it is empty, missing or
// ours; why says what makes it not ours.
func CheckReplaceable(path string, ours bool, why string) error {
	empty, err := fsutil.IsEmptyDir(path)
	if err != nil {
		if fi, serr := os.Stat(path); serr == nil && !fi.IsDir() {
			return fmt.Errorf("%w %s: it is not a directory", ErrRefuseReplace, path)
		}
		return err
	}
	if empty || ours {
		return nil
	}
	return fmt.Errorf("%w %s: %s; remove it or choose another path", ErrRefuseReplace, path, why)
}

// SyncRoot starts writing the finished image root out to disk while the
// output steps (snapshot, netboot, media) run: they only read it, and
// the writeback then waits on the disk while they use the processors.
func (s *Stage) SyncRoot() {
	if s.rootSynced != nil {
		return
	}
	s.rootSynced = make(chan error, 1)
	go func() { s.rootSynced <- fsutil.SyncFS(s.Staging.Rootfs()) }()
}

// Commit makes the staging directories durable, then moves them to their
// final names, replacing a previous build atomically. The steps ran
// without syncs (chroot.Image.SuppressSync): a crash must never leave a
// finished-looking build with empty files.
func (s *Stage) Commit() error {
	if s.rootSynced != nil {
		<-s.rootSynced // the final syncs report any error
	}
	if err := fsutil.SyncFS(s.Staging.Out()); err != nil {
		return fmt.Errorf("syncing the build: %w", err)
	}
	if s.Final.External() {
		if err := fsutil.SyncFS(s.Staging.Rootfs()); err != nil {
			return fmt.Errorf("syncing the image root: %w", err)
		}
		if err := swapInto(s.Staging.Rootfs(), s.Final.Rootfs()); err != nil {
			return err
		}
		if err := os.Symlink(s.Final.Rootfs(), s.Staging.RootfsLink()); err != nil {
			return err
		}
	}
	return swapInto(s.Staging.Out(), s.Final.Out())
}

func swapInto(stage, final string) error {
	if _, err := os.Lstat(final); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(stage, final); err != nil {
			return err
		}
		return fsutil.SyncDir(filepath.Dir(final))
	}
	if err := fsutil.Exchange(stage, final); err != nil {
		return err
	}
	// stage now holds the previous build.
	return fsutil.RemoveAll(stage)
}

// Abort removes the staging directories, or with keep leaves them for
// inspection.
func (s *Stage) Abort(log *slog.Logger, keep bool) {
	stageOut, stageRoot := s.Staging.Out(), s.Staging.Rootfs()
	if keep {
		log.Warn("failed build kept for inspection; it is not a finished image", "path", stageOut)
		if s.Final.External() {
			log.Warn("failed image root kept for inspection", "path", stageRoot)
		}
		if s.SharedWith != "" {
			log.Warn("the kept image root's files are hard links to the previous build's: changing one changes the image in place; copy it before changing anything",
				"kept", stageRoot, "previous", s.SharedWith)
		}
		return
	}
	for _, p := range []string{stageRoot, stageOut} {
		if err := fsutil.RemoveAll(p); err != nil {
			log.Error("could not remove the failed build", "path", p, "err", err)
		}
	}
}

// Unlock releases the build's locks.
func (s *Stage) Unlock() {
	for _, lk := range s.locks {
		_ = lk.Unlock()
	}
	s.locks = nil
}
