package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/krgimage/krgimage/pipeline"
	"github.com/krgimage/krgimage/stagecache"
)

func (a *app) newCacheCmd() *cobra.Command {
	var dir string
	stages := func() (string, error) {
		d, err := a.cacheDir(dir)
		return filepath.Join(d, pipeline.StagesDir), err
	}
	cmd := &cobra.Command{
		Use:   "cache ls|prune",
		Short: "List or prune the stage cache of image roots",
		Long: `A build keeps the image root in the stage cache after the steps worth keeping,
keyed by everything the root depends on, and the finished root of every
build; the next build restores the deepest step whose key is unchanged.
The entries live in CACHE-DIR/stages (CACHE-DIR is build's --cache-dir).

"cache ls" lists the entries, most recently used first. "cache prune"
removes what interrupted builds left, then every entry that none of the N
most recent builds of each recipe and output directory used (--keep N, 3
by default), then, with --max-size, the least recently used entries until
the rest fit. Pruning waits for no one: it fails while a build is using the
cache.`,
		Example: `  krgimage cache ls
  krgimage cache prune --keep 2 --max-size 20G`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown cache command %q (ls or prune)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&dir, "cache-dir", "", "the cache directory (default $XDG_CACHE_HOME/krgimage, else ~/.cache/krgimage; /var/cache/krgimage for root without a home)")

	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the stage cache's entries",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := stages()
			if err != nil {
				return err
			}
			// Listing creates nothing: a mistyped --cache-dir says so.
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(a.stdout, "no stage cache in %s\n", path)
				return nil
			}
			s, err := stagecache.Open(path, a.log)
			if err != nil {
				return err
			}
			defer s.Close()
			entries, err := s.List()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tSTEP\tRECIPE\tSIZE\tCREATED\tLAST USED")
			var total int64
			for _, e := range entries {
				total += e.DiskBytes
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", stagecache.Short(e.Key), e.Step, e.Recipe, pipeline.FormatBytes(e.DiskBytes),
					e.Created.Local().Format(time.DateTime), e.LastUsed.Local().Format(time.DateTime))
			}
			tw.Flush()
			fmt.Fprintf(a.stdout, "%d entries, %s in %s\n", len(entries), pipeline.FormatBytes(total), s.Dir())
			return nil
		},
	}

	var keep int
	var maxSize string
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove stage cache entries recent builds did not use",
		Long: `Remove what interrupted builds left in the stage cache, then every entry
that none of the --keep most recent builds (3 by default) of each recipe
and output directory used, then, with --max-size, the least recently used
entries until the rest fit. It fails while a build uses the cache.`,
		Example: `  krgimage cache prune                 # keep what the last 3 builds of each recipe used
  krgimage cache prune --keep 1        # only what the last build used
  krgimage cache prune --keep 0 --max-size 20G`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keep < 0 {
				return usagef("--keep %d: must not be negative", keep)
			}
			var limit int64
			if maxSize != "" {
				n, err := parseSize(maxSize)
				if err != nil {
					return usagef("--max-size: %v", err)
				}
				limit = n
			}
			path, err := stages()
			if err != nil {
				return err
			}
			s, err := stagecache.OpenExclusive(path, a.log)
			if errors.Is(err, stagecache.ErrBusy) {
				return fmt.Errorf("%s: %w; prune once it finished", path, err)
			}
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.Prune(stagecache.PruneOptions{Keep: keep, MaxSize: limit})
			for _, e := range res.Removed {
				a.log.Info("removed", "key", stagecache.Short(e.Key), "step", e.Step, "recipe", e.Recipe, "bytes", e.DiskBytes)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed %d entries (%s) and %d leftovers of interrupted builds; %d entries (%s) left\n",
				len(res.Removed), pipeline.FormatBytes(res.Freed), res.Debris, res.Kept, pipeline.FormatBytes(res.KeptBytes))
			return nil
		},
	}
	prune.Flags().IntVar(&keep, "keep", 3, "keep what the N most recent builds of each recipe and output used (0: no limit)")
	prune.Flags().StringVar(&maxSize, "max-size", "", "then remove the least recently used entries until the cache fits, e.g. 20G")
	cmd.AddCommand(ls, prune)
	return cmd
}

// parseSize reads a size in bytes with an optional binary unit: 512M,
// 20G, 1.5TiB.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	unit := strings.ToUpper(strings.TrimSpace(t[len(num):]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	shift, ok := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || f < 0 {
		return 0, fmt.Errorf("%q: expected a size such as 500M or 20G", s)
	}
	return int64(f * float64(uint64(1)<<shift)), nil
}
