package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/recipes"
)

// version is set at link time by the Makefile.
var version = ""

// Version returns krgimage's version.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// Exit codes.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// usageError marks a command-line mistake (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// app holds what every command shares.
type app struct {
	stdout, stderr io.Writer
	logFormat      string
	verbose        bool
	log            *slog.Logger
	progress       *progress.Display
	getenv         func(string) string
	lookupEnv      func(string) (string, bool)
	now            func() time.Time
	// redact hides the values of the withheld variables of the recipes
	// loaded so far (see hide).
	redact func(string) string
}

// Execute runs krgimage with args (without the program name) and returns
// the process exit status.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: os.Getenv, lookupEnv: os.LookupEnv, now: time.Now}
	root := a.newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if a.progress != nil {
		a.progress.Wait()
	}
	if err == nil {
		return ExitOK
	}
	// Messages quote what the recipe says, and so what its variables
	// expanded to; the error keeps its chain for the errors.As below.
	err = redactedError{err, a.shown(err.Error())}
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "krgimage: %v\nRun 'krgimage --help' for usage.\n", err)
		return ExitUsage
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "krgimage: interrupted: %v\n", err)
		return ExitInterrupted
	}
	var rerrs recipes.Errors
	if errors.As(err, &rerrs) {
		fmt.Fprintf(stderr, "krgimage: the recipe has %d problem%s:\n%v\n", len(rerrs), plural(len(rerrs)), err)
		return ExitFailure
	}
	fmt.Fprintf(stderr, "krgimage: %v\n", err)
	return ExitFailure
}

type redactedError struct {
	err error
	msg string
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (a *app) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "krgimage",
		Short: "Build root filesystems for diskless cluster nodes that boot over PXE with an NFS root",
		Long: `krgimage builds the NFS root filesystem of a diskless cluster, as the Kerrighed
NFSROOT howto does by hand: debootstrap of a Debian base system, provisioning
inside a chroot, kernel, network initramfs, and the boot server's DHCP, TFTP
and NFS configuration, all from one recipe file.

With no recipe, commands use the embedded ` + recipes.DefaultRecipe + ` recipe.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup()
		},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.PersistentFlags().StringVar(&a.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "log subprocess output and debug details")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.newBuildCmd(), a.newPlanCmd(), a.newValidateCmd(), a.newVersionCmd(), a.newInitramfsCmd(), a.newNetbootCmd(), a.newBootTestCmd(), a.newSnapshotCmd(), a.newRestoreCmd(), a.newVerifyCmd(), a.newDiffCmd(), a.newMediaCmd(), a.newCacheCmd(), a.newReportCmd())
	root.AddCommand(a.newLockCmd())
	return root
}

func (a *app) setup() error {
	format := logging.Format(a.logFormat)
	if format != logging.Text && format != logging.JSON {
		return usagef("invalid --log-format %q (allowed: text, json)", a.logFormat)
	}
	tty := false
	if f, ok := a.stderr.(*os.File); ok && format == logging.Text {
		tty = progress.IsTerminal(f)
	}
	a.progress = progress.New(a.stderr, tty)
	log, err := logging.New(a.progress.LogWriter(a.stderr), format, a.verbose)
	if err != nil {
		return usageError{err}
	}
	a.log = log
	return nil
}

// recipeFlags are the flags of commands that load a recipe.
type recipeFlags struct {
	set []string
}

func (f *recipeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.set, "set", nil, "set a recipe variable: --set NAME=VALUE (repeatable; wins over the environment)")
}

func (f *recipeFlags) vars() (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range f.set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--set %q: expected NAME=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// loadRecipe loads the recipe named by arg: a file path, or the name of a
// shipped recipe; no argument means the default shipped recipe.
func (a *app) loadRecipe(arg string, f *recipeFlags) (*recipes.Recipe, error) {
	vars, err := f.vars()
	if err != nil {
		return nil, err
	}
	opts := recipes.Options{Vars: vars, LookupEnv: a.lookupEnv}
	var r *recipes.Recipe
	switch {
	case arg == "":
		r, err = recipes.LoadShipped(recipes.DefaultRecipe, opts)
	case shipped(arg):
		r, err = recipes.LoadShipped(arg, opts)
	default:
		r, err = recipes.Load(arg, opts)
	}
	if r != nil {
		a.hide(r)
	}
	return r, err
}

func shipped(arg string) bool {
	if _, err := os.Stat(arg); err == nil || strings.ContainsAny(arg, "/.") {
		return false
	}
	return slices.Contains(recipes.Shipped(), arg)
}

// hide masks the withheld variables of r from here on in everything the
// command prints for people: its log (which carries the output of every
// subprocess), the progress display and its error. Each recipe loaded
// adds its own, so that loading another cannot show a value again.
func (a *app) hide(r *recipes.Recipe) {
	own := r.Redactor()
	if prev := a.redact; prev != nil {
		a.redact = func(s string) string { return own(prev(s)) }
	} else {
		a.redact = own
	}
	if a.log != nil {
		a.log = slog.New(logging.Redact(a.log.Handler(), own))
	}
	a.progress.Redact(a.redact)
}

// shown is s as the command may print it.
func (a *app) shown(s string) string {
	if a.redact == nil {
		return s
	}
	return a.redact(s)
}

// buildTime is SOURCE_DATE_EPOCH when set, so outputs can be reproduced,
// and the current time otherwise.
func (a *app) buildTime() (time.Time, error) {
	if s := a.getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, usagef("SOURCE_DATE_EPOCH=%q: expected seconds since 1970", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return a.now().UTC(), nil
}

func oneOptionalArg(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usagef("%s takes at most one recipe, got %d arguments", cmd.Name(), len(args))
	}
	return nil
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments", cmd.Name())
	}
	return nil
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

func (a *app) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print krgimage's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.stdout, "krgimage %s\n", Version())
			return nil
		},
	}
}
