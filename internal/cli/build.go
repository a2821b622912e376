package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/krgimage/krgimage/internal/cachedir"
	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/pipeline"
	"github.com/krgimage/krgimage/recipes"
)

type buildOptions struct {
	recipe     string
	cacheDir   string
	out        string
	mirror     string
	dryRun     bool
	check      bool
	keepFailed bool
	noCache    bool
	// noCacheSet: --no-cache was given, and wins over KRGIMAGE_NO_CACHE.
	noCacheSet bool
	bootTest   bool
	boot       bootTestOptions
	flags      recipeFlags
}

func (a *app) newBuildCmd() *cobra.Command {
	o := &buildOptions{}
	cmd := &cobra.Command{
		Use:   "build [recipe]",
		Short: "Build a node image from a recipe",
		Long: `Build a node image: bootstrap the base system and run every step of the
recipe. The result goes to the output directory (./out): rootfs/ (the image
root, unless the recipe places it elsewhere) and build.json (what was built
and how long each step took).

The output is written to a staging directory next to it and moved into place
only when the whole build succeeded; a failed or interrupted build leaves the
previous output untouched. Two builds cannot write one output at once.

The recipe is a file, or the name of a shipped recipe (` + shippedList() + `);
without one, the embedded ` + recipes.DefaultRecipe + ` recipe is built.

The Debian mirror is, in order: --mirror, $KRGIMAGE_MIRROR, the recipe's
mirror:, the host's own APT sources. Must run as root.

Each step has a key: its recipe section, the files it reads, the packages
it installs (the lockfile, or the mirror's package indices), and the key of
the step before. The image root is kept in the stage cache
(CACHE-DIR/stages) after the steps worth keeping; a build restores the
deepest step whose key is unchanged and runs the rest. When nothing changed
and the previous output's root is untouched, that root is reused as it is.
--no-cache runs every step; krgimage cache lists and prunes the cache.

Outputs are reproducible: times are clamped to $SOURCE_DATE_EPOCH, by
default the date of the Release file the packages come from (the
lockfile's, else the suite's on the mirror), and the root is normalized
(APT lists and caches, logs, machine-id removed or emptied).`,
		Example: `  krgimage build                          # the default recipe into ./out
  krgimage build recipes/kerrighed-lenny.yaml -o /srv/images/krg --set LENNY_MIRROR=http://mirror/debian
  krgimage build my.yaml --dry-run        # print the plan only`,
		Args: oneOptionalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.recipe = firstArg(args)
			o.noCacheSet = cmd.Flags().Changed("no-cache")
			return a.runBuild(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "output", "o", "out", "output directory")
	f.StringVar(&o.mirror, "mirror", "", "Debian mirror URL (overrides KRGIMAGE_MIRROR and the recipe)")
	f.BoolVar(&o.dryRun, "dry-run", false, "validate and print the plan without building")
	f.BoolVar(&o.check, "check", false, "validate and run the host checks (root, tools, the mirror carries the suite, sources present), then stop")
	f.BoolVar(&o.keepFailed, "keep-failed", false, "keep a failed build's staging directory for inspection")
	f.BoolVar(&o.bootTest, "boot-test", false, "boot the finished image in QEMU and check it (see krgimage boot-test)")
	o.boot.add(cmd, "boot-test-")
	f.StringVar(&o.cacheDir, "cache-dir", "", "where downloads, kernel build trees and the stage cache are kept (default $XDG_CACHE_HOME/krgimage, else ~/.cache/krgimage; /var/cache/krgimage for root without a home)")
	f.BoolVar(&o.noCache, "no-cache", false, "run every step: neither use nor fill the stage cache (default true when KRGIMAGE_NO_CACHE=1)")
	o.flags.add(cmd)
	return cmd
}

func shippedList() string {
	s := ""
	for i, n := range recipes.Shipped() {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

// pipelineOptions loads the recipe and resolves everything a build or a
// plan needs.
func (a *app) pipelineOptions(recipe, out, mirror string, flags *recipeFlags) (pipeline.Options, error) {
	return a.pipelineOptionsCache(recipe, out, mirror, "", flags)
}

// defaultCacheDir follows the XDG base directory convention; root
// without a home uses /var/cache/krgimage (cachedir.Default).
func (a *app) defaultCacheDir() (string, error) {
	return cachedir.Default(a.getenv, os.Geteuid())
}

// cacheDir is the --cache-dir given, else the default.
func (a *app) cacheDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return a.defaultCacheDir()
}

func (a *app) pipelineOptionsCache(recipe, out, mirror, cacheDir string, flags *recipeFlags) (pipeline.Options, error) {
	r, err := a.loadRecipe(recipe, flags)
	if err != nil {
		return pipeline.Options{}, err
	}
	if cacheDir, err = a.cacheDir(cacheDir); err != nil {
		return pipeline.Options{}, err
	}
	m, err := pipeline.ResolveMirror(pipeline.MirrorInputs{Flag: mirror, Env: a.getenv("KRGIMAGE_MIRROR"), HostRoot: "/"}, r)
	if err != nil {
		return pipeline.Options{}, err
	}
	bt, err := a.buildTime()
	if err != nil {
		return pipeline.Options{}, err
	}
	var sde *time.Time
	if a.getenv("SOURCE_DATE_EPOCH") != "" {
		sde = &bt
	}
	// Without SOURCE_DATE_EPOCH, the build dates itself from the suite's
	// Release file; bt is the fallback when that cannot be read.
	return pipeline.Options{
		Recipe:           r,
		OutDir:           out,
		Mirror:           m,
		Log:              a.log,
		Progress:         a.progress,
		Runner:           run.New(a.log),
		Version:          Version(),
		Clock:            a.now,
		BuildTime:        bt,
		SourceDateEpoch:  sde,
		EpochFromRelease: sde == nil,
		LookupEnv:        a.lookupEnv,
		CacheDir:         cacheDir,
	}, nil
}

func (a *app) runBuild(ctx context.Context, o *buildOptions) error {
	po, err := a.pipelineOptionsCache(o.recipe, o.out, o.mirror, o.cacheDir, &o.flags)
	if err != nil {
		return err
	}
	if o.dryRun {
		return pipeline.Plan(ctx, po, a.stdout)
	}
	if o.check {
		if err := pipeline.Check(ctx, po); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s can be built here: the recipe is valid and every host check passed\n", a.shown(po.Recipe.Name))
		return nil
	}
	po.KeepFailed = o.keepFailed
	noCache := o.noCache
	if !o.noCacheSet {
		noCache = truthy(a.getenv("KRGIMAGE_NO_CACHE"))
	}
	po.StageCache = !noCache
	if po.StageCache {
		po.CacheID = cacheID()
	}
	a.log.Info("building", "recipe", po.Recipe.Source, "mirror", debarchive.RedactURL(po.Mirror.URL), "path", o.out)
	rep, err := pipeline.Build(ctx, po)
	if rep != nil {
		a.progress.Wait()
		fmt.Fprintln(a.stderr)
		rep.WriteSummary(a.stderr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s\n", rep.Output.Dir)
	if o.bootTest {
		return a.runBootTest(ctx, po.Recipe, rep.Output.Dir, &o.boot)
	}
	return nil
}

func (a *app) newPlanCmd() *cobra.Command {
	o := &buildOptions{}
	cmd := &cobra.Command{
		Use:   "plan [recipe]",
		Short: "Validate a recipe and print the steps a build would run",
		Long: `Validate every step of a build and print what each would do, without building
anything or needing root. Same as "krgimage build --dry-run".`,
		Args: oneOptionalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			po, err := a.pipelineOptions(firstArg(args), o.out, o.mirror, &o.flags)
			if err != nil {
				return err
			}
			return pipeline.Plan(cmd.Context(), po, a.stdout)
		},
	}
	cmd.Flags().StringVarP(&o.out, "output", "o", "out", "output directory the plan is for")
	cmd.Flags().StringVar(&o.mirror, "mirror", "", "Debian mirror URL")
	o.flags.add(cmd)
	return cmd
}

func (a *app) newValidateCmd() *cobra.Command {
	var flags recipeFlags
	var print bool
	cmd := &cobra.Command{
		Use:   "validate [recipe...]",
		Short: "Check recipes and report every problem with its line and column",
		Long: `Check recipes: unknown keys, wrong types, invalid addresses, duplicate nodes,
relative paths where absolute ones are needed... Every problem is reported,
each with file, line and column. --print shows the recipe as krgimage
understands it, defaults filled in, secrets redacted and the values of
withheld variables (see public_variables) shown as ${NAME}.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{""}
			}
			failed := 0
			for _, arg := range args {
				r, err := a.loadRecipe(arg, &flags)
				if err != nil {
					if len(args) == 1 {
						return err
					}
					fmt.Fprintf(a.stderr, "%s\n", a.shown(err.Error()))
					failed++
					continue
				}
				if print {
					out, err := recipes.Marshal(r)
					if err != nil {
						return err
					}
					// The recipe as it reads back with the same
					// variables, withheld values left as ${NAME}.
					fmt.Fprintf(a.stdout, "%s", a.shown(string(out)))
				} else {
					fmt.Fprintf(a.stdout, "%s: ok\n", r.Source)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d recipes are invalid", failed, len(args))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&print, "print", false, "print the normalized recipe")
	flags.add(cmd)
	return cmd
}

// truthy reads a boolean environment variable: 1, true, yes, on.
func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// cacheID names this krgimage in the stage cache's keys: its version and
// the digest of its executable, so that a krgimage built from other
// sources, which may provision differently, never reuses another's roots.
func cacheID() string {
	id := Version()
	exe, err := os.Executable()
	if err != nil {
		return id
	}
	f, err := os.Open(exe)
	if err != nil {
		return id
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return id
	}
	return id + "+" + hex.EncodeToString(h.Sum(nil))[:16]
}
