package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/krgimage/krgimage/pipeline"
)

type lockOptions struct {
	recipe   string
	out      string
	mirror   string
	cacheDir string
	flags    recipeFlags
}

func (a *app) newLockCmd() *cobra.Command {
	o := &lockOptions{}
	cmd := &cobra.Command{
		Use:   "lock [recipe]",
		Short: "Pin the base system's packages: write the recipe's lockfile",
		Long: `Resolve the packages the native bootstrap (bootstrap.method: native) would
install for the recipe, from the mirror as it is now, and write them to a
lockfile: every package with its version, file, size and SHA-256, and the date
of the suite's Release. The lockfile goes beside the recipe (recipe.yaml ->
recipe.lock), or where the recipe's bootstrap.lockfile or -o says.

A build of a recipe with a lockfile installs exactly those packages, checked
against those checksums, whatever the mirror has since moved on to; it fails,
naming the package, when the mirror no longer has one (point the recipe at a
snapshot of the archive then). Run krgimage lock again to move the pins.

Only the Release and the package indexes are downloaded; no root needed.`,
		Example: `  krgimage lock my.yaml                 # writes my.lock
  krgimage lock recipes/bookworm-nfsroot.yaml -o /tmp/bookworm.lock`,
		Args: oneOptionalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.recipe = firstArg(args)
			return a.runLock(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "output", "o", "", "lockfile to write (default: beside the recipe, with the extension .lock)")
	f.StringVar(&o.mirror, "mirror", "", "Debian mirror URL (overrides KRGIMAGE_MIRROR and the recipe)")
	f.StringVar(&o.cacheDir, "cache-dir", "", "where downloaded indexes are kept (default $XDG_CACHE_HOME/krgimage, else ~/.cache/krgimage; /var/cache/krgimage for root without a home)")
	o.flags.add(cmd)
	return cmd
}

func (a *app) runLock(ctx context.Context, o *lockOptions) error {
	po, err := a.pipelineOptionsCache(o.recipe, "out", o.mirror, o.cacheDir, &o.flags)
	if err != nil {
		return err
	}
	path, l, err := pipeline.Lock(ctx, po, o.out)
	if err != nil {
		return err
	}
	a.log.Info("lockfile written", "path", path, "packages", len(l.Packages), "release_date", l.Release.Date)
	fmt.Fprintln(a.stdout, path)
	return nil
}
