package provision

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
)

// Run runs a shell script inside the image (or, with chroot: false, on the
// host with ROOT set to the image root). The script is not subject to
// ${VAR} expansion; pass recipe values through env:
//
//   - run:
//     env: {CLUSTER: "${CLUSTER}"}
//     script: |
//     echo "$CLUSTER" > /etc/cluster-name
type Run struct {
	Script  string            `yaml:"script,omitempty" expand:"no" text:"multiline"`
	File    string            `yaml:"file,omitempty"`
	Env     map[string]string `yaml:"env,omitempty" text:"multiline"`
	Shell   string            `yaml:"shell" check:"abspath"`
	Timeout recipes.Duration  `yaml:"timeout,omitempty"`
	Chroot  bool              `yaml:"chroot"`
}

var runType = typeOf(func() *Run { return &Run{Shell: "/bin/sh", Chroot: true} }, func(c *Run, img *Image) Step { return runScript{c, img} })

func (r *Run) Validate(v *recipes.Validator, keyPath string) {
	if (r.Script == "") == (r.File == "") {
		v.Errorf(keyPath, recipes.ErrConflict, "give exactly one of script and file")
	}
	for k := range r.Env {
		if !recipes.ValidVarName(k) {
			v.Errorf(keyPath+".env."+k, recipes.ErrInvalid, "invalid variable name %q", k)
		}
	}
}

// runScript runs a recipe's shell script inside the image, or on the host
// with ROOT set when chroot is false (Run).
type runScript struct {
	cfg *Run
	img *Image
}

func (r runScript) source() string {
	if r.cfg.File != "" {
		return r.cfg.File
	}
	first, _, _ := strings.Cut(strings.TrimSpace(r.cfg.Script), "\n")
	if len(first) > 60 {
		first = first[:57] + "..."
	}
	return "inline script (" + first + ")"
}

func (r runScript) env() []string {
	keys := make([]string, 0, len(r.cfg.Env))
	for k := range r.cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var env []string
	for _, k := range keys {
		env = append(env, k+"="+r.cfg.Env[k])
	}
	return env
}

// shownEnv is the environment as the plan shows it: values only of the
// entries the recipe lists in public_variables.
func (r runScript) shownEnv() []string {
	var out []string
	for _, kv := range r.env() {
		k, _, _ := strings.Cut(kv, "=")
		if !r.img.Recipe.Public(k) {
			kv = k + "=(withheld: not in public_variables)"
		}
		out = append(out, kv)
	}
	return out
}

func (r runScript) Describe() []string {
	where := "inside the image"
	if !r.cfg.Chroot {
		where = "on the build host, with ROOT set to the image root"
	}
	out := []string{"run " + r.source() + " with " + r.cfg.Shell + " " + where}
	if len(r.cfg.Env) > 0 {
		out = append(out, "environment: "+strings.Join(r.shownEnv(), " "))
	}
	return out
}

func (r runScript) Check() error {
	if r.cfg.File == "" {
		return nil
	}
	if _, err := os.Stat(r.img.Recipe.Path(r.cfg.File)); err != nil {
		return fmt.Errorf("%w: script: %v", chroot.ErrMissing, err)
	}
	return nil
}

// Reads: the script's file.
func (r runScript) Reads() ([]Input, error) {
	var in inputs
	in.file("file", r.cfg.File)
	return in, nil
}

// ChangesKernel: a script may do anything.
func (runScript) ChangesKernel() bool { return true }

func (r runScript) Apply(ctx context.Context, s *chroot.Session) error {
	script := r.cfg.Script
	if r.cfg.File != "" {
		b, err := os.ReadFile(s.Recipe.Path(r.cfg.File))
		if err != nil {
			return err
		}
		script = string(b)
	}
	// The script goes in on stdin: no temporary file in the image, and no
	// script text in the process list.
	if r.cfg.Chroot {
		return s.RunCommand(ctx, chroot.Command{Argv: []string{r.cfg.Shell, "-s"}, Env: r.env(), Stdin: strings.NewReader(script), Timeout: r.cfg.Timeout.Duration})
	}
	return s.Runner.Run(ctx, run.Cmd{
		Path: r.cfg.Shell, Args: []string{"-s"}, Dir: s.Recipe.Dir(),
		Env:     append(s.Env(r.env()...), "ROOT="+s.Root),
		Stdin:   strings.NewReader(script),
		Timeout: r.cfg.Timeout.Duration,
	})
}
