package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
)

// BuildStep is one unit of a build: the bootstrap, each provisioning entry
// (which runs a provision.Step), the kernel, the initramfs, the boot
// server's files, media and the snapshot.
type BuildStep interface {
	// Name is short and stable: it keys logs, reports and the plan.
	Name() string
	// Describe says what Run will do, one line per action, for the plan.
	Describe(env *Env) []string
	// Validate checks the step's configuration without side effects.
	Validate(ctx context.Context, env *Env) error
	// Run does the work.
	Run(ctx context.Context, env *Env) error
}

// Preflighter is a step with host preconditions (tools installed, root,
// mirror reachable), checked for every step before the first one runs.
type Preflighter interface {
	Preflight(ctx context.Context, env *Env) error
}

// Cleaner is a step that must undo something (unmount, stop a process)
// whether the build succeeds, fails or is interrupted. Cleanup runs under a
// context that is not cancelled by Ctrl-C.
type Cleaner interface {
	Cleanup(ctx context.Context, env *Env) error
}

// Env is what steps share: where the image is, how to log and run
// commands, and results earlier steps hand to later ones.
type Env struct {
	Recipe *recipes.Recipe
	// Root is the image root being built (inside the staging directory
	// during a build).
	Root string
	// Out is the output directory being built.
	Out string
	// FinalRoot and FinalOut are where Root and Out will be once the
	// build succeeds; configuration that names the image's location uses
	// these.
	FinalRoot string
	FinalOut  string
	Mirror    Mirror
	Arch      string
	Log       *slog.Logger
	Runner    *run.Runner
	Progress  *progress.Display
	// Task is the progress line of the running step.
	Task *progress.Task
	// BuildTime is the time recorded in outputs (SOURCE_DATE_EPOCH when
	// set), not the wall clock.
	BuildTime time.Time
	// SourceDateEpoch is set when the build must be reproducible: outputs
	// clamp their times to it.
	SourceDateEpoch *time.Time
	// CacheDir keeps what builds share: downloads, kernel build trees.
	CacheDir string
	// LookupEnv reads variables a recipe names for secrets (password
	// hashes); the CLI passes the process environment.
	LookupEnv func(string) (string, bool)
	// State carries results between steps.
	State *State
}

// State is what steps learn while running that later steps need.
//
// The stage cache keeps it with each image root it stores, so a build that
// restores the root learns what the steps that built it learnt.
type State struct {
	// KernelVersion is the installed kernel's version (uname -r).
	KernelVersion string `json:"kernel_version,omitempty"`
	// Initramfs is the initramfs's path inside the image.
	Initramfs string `json:"initramfs,omitempty"`
	// Snapshot describes the snapshot written, if any.
	Snapshot *SnapshotInfo `json:"-"`
}

// SnapshotInfo is the snapshot a build wrote, recorded in build.json.
type SnapshotInfo struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256" redact:"keep"`
	Bytes   int64  `json:"bytes"`
	Entries int    `json:"entries"`
}

func (e *Env) forStep(s BuildStep) *Env {
	c := *e
	c.Log = e.Log.With("step", s.Name())
	return &c
}

// chrootImage is the image as the steps that run commands in it see it.
// Their syncs are suppressed: the build syncs the finished output once,
// before it takes its name.
func (e *Env) chrootImage() *chroot.Image {
	return &chroot.Image{
		Root: e.Root, Recipe: e.Recipe, Mirror: e.Mirror.URL, SecurityMirror: e.Mirror.Security,
		Log: e.Log, Runner: e.Runner, LookupEnv: e.LookupEnv, BuildTime: e.BuildTime,
		SuppressSync: true,
	}
}
