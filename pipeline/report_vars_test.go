package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/dpkg"
	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
)

// withheldRecipe expands TOKEN, withheld, into a description, a package
// name, a path and run env entries, and SITE, public, next to it.
const withheldRecipe = `name: s
suite: bookworm
description: "for ${SITE}, token ${TOKEN}"
public_variables: [SITE, GREETING]
provision:
  - packages: ["${TOKEN}-tools"]
  - write: {path: "/etc/${TOKEN}", content: x}
  - run:
      env: {GREETING: "hello ${TOKEN}", API_TOKEN: "${TOKEN}"}
      script: "true"
`

const (
	withheldValue = "s3cr3tvalue"
	publicValue   = "visible-site"
)

// leakStep does what a real step may do with a value expanded into its
// configuration: name it, log it, install a package and write an output
// called by it, fail with it in its error.
type leakStep struct{ fail bool }

func (leakStep) Name() string                         { return "write /etc/" + withheldValue }
func (leakStep) Describe(*Env) []string               { return []string{"write /etc/" + withheldValue} }
func (leakStep) Validate(context.Context, *Env) error { return nil }
func (s leakStep) Run(_ context.Context, env *Env) error {
	env.Log.Info("writing", "path", "/etc/"+withheldValue, "site", publicValue)
	status := filepath.Join(env.Root, dpkg.StatusFile)
	if err := os.MkdirAll(filepath.Dir(status), 0o755); err != nil {
		return err
	}
	pkg := "Package: " + withheldValue + "-tools\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n"
	if err := os.WriteFile(status, []byte(pkg), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(env.Out, withheldValue+".list"), nil, 0o644); err != nil {
		return err
	}
	if s.fail {
		return fmt.Errorf("open /etc/%s: %w", withheldValue, os.ErrPermission)
	}
	return nil
}

// build.json keeps the values of public variables only; the others by
// name. Nothing a build shows carries a withheld value, wherever it was
// expanded: not the plan, build.json, the summary, nor the log (masked
// by logging.Redact, as the CLI sets it up).
func TestReportWithholdsVariables(t *testing.T) {
	rec := &recipes.Recipe{Name: "r", PublicVariables: []string{"MODE"},
		Vars: map[string]string{"MODE": "rw", "TOKEN": "s3cr3t", "API_URL": "https://u:p@x"}}
	r := newReport(&Options{Recipe: rec, Clock: time.Now}, "out", "root")
	if len(r.Recipe.Variables) != 1 || r.Recipe.Variables["MODE"] != "rw" {
		t.Errorf("variables %v, want only MODE=rw", r.Recipe.Variables)
	}
	if !slices.Equal(r.Recipe.Withheld, []string{"API_URL", "TOKEN"}) {
		t.Errorf("withheld %v, want API_URL and TOKEN", r.Recipe.Withheld)
	}
	// What the next build reads back, and digests, keep their values.
	r.Output.Dir, r.Output.Rootfs = "/srv/s3cr3t", "/srv/s3cr3t/root"
	r.Steps = []StepReport{{Name: "s3cr3t", Key: "s3cr3t"}}
	if s := r.shown(); s.Output.Dir != "/srv/${TOKEN}" || s.Output.Rootfs != "/srv/s3cr3t/root" || s.Steps[0].Name != "${TOKEN}" || s.Steps[0].Key != "s3cr3t" {
		t.Errorf("shown: output %+v, steps %+v", s.Output, s.Steps)
	}

	env := map[string]string{"TOKEN": withheldValue, "SITE": publicValue}
	rec, err := recipes.Parse([]byte(withheldRecipe), "s.yaml", recipes.Options{LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	base, err := logging.New(&logs, logging.JSON, true)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(logging.Redact(base.Handler(), rec.Redactor()))
	options := func(out string, steps ...BuildStep) Options {
		return Options{
			Recipe: rec, OutDir: out, Mirror: Mirror{URL: "http://mirror.example/debian", Source: "test"},
			Log: log, Progress: progress.New(nil, false), Runner: run.New(log), Version: "test",
			Clock: time.Now, BuildTime: time.Unix(1700000000, 0), Steps: steps,
		}
	}
	check := func(what, text string, want ...string) {
		t.Helper()
		if strings.Contains(text, withheldValue) {
			t.Errorf("%s shows the withheld value:\n%s", what, text)
		}
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q:\n%s", what, w, text)
			}
		}
	}

	var plan bytes.Buffer
	if err := Plan(t.Context(), options("out"), &plan); err != nil {
		t.Fatal(err)
	}
	check("plan", plan.String(), "for "+publicValue+", token ${TOKEN}", "${TOKEN}-tools", "write /etc/${TOKEN} ",
		"GREETING=hello ${TOKEN}", "API_TOKEN=(withheld")

	out := filepath.Join(t.TempDir(), "out")
	rep, err := Build(t.Context(), options(out, leakStep{}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	check("build.json", string(b), `"${TOKEN}-tools"`, `"write /etc/${TOKEN}"`, `"${TOKEN}.list"`, `"SITE": "`+publicValue+`"`)
	var summary, text bytes.Buffer
	rep.WriteSummary(&summary)
	rep.WriteText(&text)
	check("summary", summary.String(), "write /etc/${TOKEN}")
	check("report text", text.String(), "${TOKEN}.list")
	if rep.Output.Dir != out {
		t.Errorf("Output.Dir = %q: the report in memory must keep the real values", rep.Output.Dir)
	}

	failed, err := Build(t.Context(), options(filepath.Join(t.TempDir(), "out"), leakStep{fail: true}))
	if !errors.Is(err, os.ErrPermission) || failed == nil {
		t.Fatalf("failing build: %v", err)
	}
	summary.Reset()
	text.Reset()
	failed.WriteSummary(&summary)
	failed.WriteText(&text)
	check("failed summary", summary.String(), "write /etc/${TOKEN}")
	check("failed report text", text.String(), "open /etc/${TOKEN}")
	check("log", logs.String(), `"path":"/etc/${TOKEN}"`, publicValue)
}

// build.json, the plan and the summary name the mirror without the
// credentials its URL may carry.
func TestReportRedactsMirror(t *testing.T) {
	o := &Options{Recipe: &recipes.Recipe{Name: "r"}, Clock: time.Now,
		Mirror: Mirror{URL: "https://user:s3cr3t@mirror.example/debian", Security: "https://tok3n@mirror.example/debian-security"}}
	r := newReport(o, "out", "root")
	var summary strings.Builder
	r.WriteSummary(&summary)
	for _, s := range []string{r.Mirror.URL, r.Mirror.Security, summary.String()} {
		if strings.Contains(s, "s3cr3t") || strings.Contains(s, "tok3n") {
			t.Errorf("credentials in %q", s)
		}
	}
	if !strings.Contains(r.Mirror.URL, "mirror.example/debian") {
		t.Errorf("mirror = %q, want the host and path kept", r.Mirror.URL)
	}
}
