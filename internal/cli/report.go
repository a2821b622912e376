package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/krgimage/krgimage/pipeline"
)

func (a *app) newReportCmd() *cobra.Command {
	var previous string
	cmd := &cobra.Command{
		Use:   "report BUILD [--previous OLD]",
		Short: "Summarize a build, and what changed since a previous one",
		Long: `Print what BUILD (a build.json, or an output directory holding one) built:
the recipe, the image's size and packages, each step's time and whether it
came from the stage cache, and the outputs with their digests.

With --previous, also print what changed since that build: packages
upgraded, downgraded, added or removed, outputs whose content changed, the
steps that ran again because their inputs changed. This is what a nightly
job posts.`,
		Example: `  krgimage report out
  krgimage report out/build.json --previous yesterday/build.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("report takes one BUILD, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cur, err := pipeline.ReadReport(args[0])
			if err != nil {
				return err
			}
			// Both are read before anything is printed.
			var prev *pipeline.Report
			if previous != "" {
				if prev, err = pipeline.ReadReport(previous); err != nil {
					return err
				}
			}
			cur.WriteText(a.stdout)
			if prev == nil {
				return nil
			}
			fmt.Fprintln(a.stdout)
			pipeline.CompareReports(prev, cur).WriteText(a.stdout)
			return nil
		},
	}
	cmd.Flags().StringVar(&previous, "previous", "", "a previous build's build.json (or output directory) to compare with")
	return cmd
}
