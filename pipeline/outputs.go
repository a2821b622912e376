package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/krgimage/krgimage/internal/layout"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/kernel"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
)

// layout is where the step writes: the staging directories during a
// build.
func (e *Env) layout() layout.Layout { return layout.New(e.Out, e.Recipe).At(e.Out, e.Root) }

// finalLayout is where the build ends up, which what the step writes
// names.
func (e *Env) finalLayout() layout.Layout {
	return layout.New(e.FinalOut, e.Recipe).At(e.FinalOut, e.FinalRoot)
}

// ErrNoSuchStep: the recipe has no output step by that name.
var ErrNoSuchStep = errors.New("no such output step")

// OutputOptions run one output step of a recipe (netboot, media,
// snapshot) alone, on a finished build: krgimage netboot and media.
type OutputOptions struct {
	Recipe *recipes.Recipe
	// Layout is the build's: the step reads its image root and writes
	// into its output directory (At moves either).
	Layout layout.Layout
	// Kernel is the kernel version to use; by default the one the
	// recipe's kernel.version picks, else the only one in the image.
	Kernel string
	// BuildTime dates what the step writes; SourceDateEpoch, when set,
	// clamps it.
	BuildTime       time.Time
	SourceDateEpoch *time.Time
	// Log is required.
	Log      *slog.Logger
	Runner   *run.Runner
	Progress *progress.Display
}

// RunOutputStep runs the recipe's output step called name as a build runs
// it, against o.Layout: its validation, its host checks, then its run.
// Their failures are ErrInvalid, ErrPreflight and the step's own, as in a
// build.
func RunOutputStep(ctx context.Context, name string, o OutputOptions) error {
	s, env, err := o.step(name)
	if err != nil {
		return err
	}
	if err := validateAll(ctx, []BuildStep{s}, env); err != nil {
		return err
	}
	if err := preflightAll(ctx, []BuildStep{s}, env); err != nil {
		return err
	}
	senv := env.forStep(s)
	senv.Task = env.Progress.Task(name, 0)
	err = s.Run(ctx, senv)
	senv.Task.Done(err != nil)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// NetbootTree is what the recipe's netboot step would write for the image
// in o.Layout, for krgimage netboot to compare with a server or install.
// Before the image exists, it is the server's part alone: every
// configuration file and the host's loaders, with the image's files
// Pending.
func NetbootTree(ctx context.Context, o OutputOptions) (*netboot.Tree, error) {
	if _, err := os.Stat(o.Layout.Rootfs()); errors.Is(err, fs.ErrNotExist) {
		return netbootBeforeImage(o)
	}
	s, env, err := o.step("netboot")
	if err != nil {
		return nil, err
	}
	if err := validateAll(ctx, []BuildStep{s}, env); err != nil {
		return nil, err
	}
	return s.(treeMaker).tree(env.forStep(s))
}

// treeMaker is the netboot step, whose tree krgimage netboot takes
// without writing it.
type treeMaker interface {
	tree(env *Env) (*netboot.Tree, error)
}

// step finds the output step called name among the recipe's, with the
// environment it runs in.
func (o *OutputOptions) step(name string) (BuildStep, *Env, error) {
	s, err := o.find(name)
	if err != nil {
		return nil, nil, err
	}
	out, root := o.Layout.Out(), o.Layout.Rootfs()
	env := &Env{
		Recipe: o.Recipe, Root: root, Out: out, FinalRoot: root, FinalOut: out, Arch: o.Recipe.Architecture,
		Log: o.Log, Runner: o.Runner, Progress: o.Progress, BuildTime: o.BuildTime, SourceDateEpoch: o.SourceDateEpoch,
		LookupEnv: func(string) (string, bool) { return "", false }, State: &State{},
	}
	if o.Kernel != "" {
		v, err := kernel.Resolve(root, o.Kernel)
		if err != nil {
			return nil, nil, err
		}
		env.State.KernelVersion = v
	}
	return s, env, nil
}

// find returns the recipe's output step called name.
func (o *OutputOptions) find(name string) (BuildStep, error) {
	for _, c := range Steps(o.Recipe) {
		if c.Name() == name && isOutputOnly(c) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w: %s does not write %s", ErrNoSuchStep, o.Recipe.Source, name)
}

// netbootBeforeImage names the kernel by the version --kernel or the
// recipe's kernel.version gives, when one does.
func netbootBeforeImage(o OutputOptions) (*netboot.Tree, error) {
	if _, err := o.find("netboot"); err != nil {
		return nil, err
	}
	version := o.Kernel
	if k := o.Recipe.Kernel; version == "" && k != nil {
		version = k.Version
	}
	return netboot.Generate(netboot.Options{Recipe: o.Recipe, Kernel: version})
}
