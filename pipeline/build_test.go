package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
)

// fakeStep records what the runner does with it.
type fakeStep struct {
	name        string
	invalid     error
	preflight   error
	fail        error
	block       bool // wait for the context to end
	cleanupCtx  *error
	log         *[]string
	mu          *sync.Mutex
	started     chan struct{}
	writeToRoot string
}

func (s *fakeStep) record(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.log = append(*s.log, s.name+":"+what)
}

func (s *fakeStep) Name() string               { return s.name }
func (s *fakeStep) Describe(env *Env) []string { return []string{"fake " + s.name} }
func (s *fakeStep) Validate(context.Context, *Env) error {
	s.record("validate")
	return s.invalid
}
func (s *fakeStep) Preflight(context.Context, *Env) error {
	s.record("preflight")
	return s.preflight
}
func (s *fakeStep) Run(ctx context.Context, env *Env) error {
	s.record("run")
	if s.writeToRoot != "" {
		if err := os.MkdirAll(env.Root, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(env.Root, s.writeToRoot), []byte(s.name), 0o644); err != nil {
			return err
		}
	}
	if s.block {
		if s.started != nil {
			close(s.started)
		}
		<-ctx.Done()
		return ctx.Err()
	}
	return s.fail
}
func (s *fakeStep) Cleanup(ctx context.Context, _ *Env) error {
	s.record("cleanup")
	if s.cleanupCtx != nil {
		*s.cleanupCtx = ctx.Err()
	}
	return nil
}

type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) step(name string) *fakeStep {
	return &fakeStep{name: name, log: &r.log, mu: &r.mu}
}

func (r *recorder) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func testOptions(t *testing.T, out string, steps ...BuildStep) Options {
	t.Helper()
	r, err := recipes.Parse([]byte("name: test\nsuite: bookworm\n"), "test.yaml", recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	log := logging.Discard()
	return Options{
		Recipe: r, OutDir: out, Mirror: Mirror{URL: "http://mirror.example/debian", Source: "test"},
		Log: log, Progress: progress.New(nil, false), Runner: run.New(log), Version: "test",
		Clock: time.Now, BuildTime: time.Unix(1700000000, 0), Steps: steps,
	}
}

func TestBuildSuccess(t *testing.T) {
	rec := &recorder{}
	a, b := rec.step("a"), rec.step("b")
	a.writeToRoot = "etc-a"
	out := filepath.Join(t.TempDir(), "out")
	rep, err := Build(t.Context(), testOptions(t, out, a, b))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a:validate", "b:validate", "a:preflight", "b:preflight", "a:run", "b:run", "b:cleanup", "a:cleanup"}
	if got := rec.events(); !slices.Equal(got, want) {
		t.Errorf("events = %v\nwant %v", got, want)
	}
	if rep.Result != ResultSuccess || len(rep.Steps) != 2 {
		t.Errorf("report = %+v", rep)
	}
	var onDisk Report
	b1, err := os.ReadFile(filepath.Join(out, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b1, &onDisk); err != nil {
		t.Fatal(err)
	}
	if onDisk.Mirror.Source != "test" || onDisk.Output.Rootfs != filepath.Join(out, "rootfs") || onDisk.Recipe.SHA256 == "" {
		t.Errorf("build.json = %s", b1)
	}
	if _, err := os.Stat(filepath.Join(out, "rootfs", "etc-a")); err != nil {
		t.Errorf("image root missing: %v", err)
	}
	var sum bytes.Buffer
	rep.WriteSummary(&sum)
	if !strings.Contains(sum.String(), "total") {
		t.Errorf("summary = %q", sum.String())
	}

	// A second build replaces the first as a whole.
	rec2 := &recorder{}
	c := rec2.step("c")
	c.writeToRoot = "etc-c"
	if _, err := Build(t.Context(), testOptions(t, out, c)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "rootfs", "etc-a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the previous build's root survived: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "rootfs", "etc-c")); err != nil {
		t.Errorf("the new root is missing: %v", err)
	}
	assertNoStaging(t, out)
}

func assertNoStaging(t *testing.T, out string) {
	t.Helper()
	stage, _ := siblings(out)
	if _, err := os.Stat(stage); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging directory %s left behind: %v", stage, err)
	}
}

func TestBuildValidatesEverythingFirst(t *testing.T) {
	rec := &recorder{}
	a, b, c := rec.step("a"), rec.step("b"), rec.step("c")
	b.invalid = errors.New("b is wrong")
	c.invalid = errors.New("c is wrong")
	out := filepath.Join(t.TempDir(), "out")
	_, err := Build(t.Context(), testOptions(t, out, a, b, c))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "b is wrong") || !strings.Contains(err.Error(), "c is wrong") {
		t.Fatalf("Build() = %v, want both validation errors", err)
	}
	for _, e := range rec.events() {
		if strings.HasSuffix(e, ":run") || strings.HasSuffix(e, ":preflight") {
			t.Errorf("%s happened although validation failed", e)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output created: %v", err)
	}
}

func TestBuildPreflightFailure(t *testing.T) {
	rec := &recorder{}
	a, b := rec.step("a"), rec.step("b")
	a.preflight = errors.New("no debootstrap")
	b.preflight = errors.New("not root")
	out := filepath.Join(t.TempDir(), "out")
	_, err := Build(t.Context(), testOptions(t, out, a, b))
	if !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), "no debootstrap") || !strings.Contains(err.Error(), "not root") {
		t.Fatalf("Build() = %v", err)
	}
	if slices.Contains(rec.events(), "a:run") {
		t.Error("a ran despite failed preflight")
	}
	assertNoStaging(t, out)
}

func TestBuildFailureKeepsPreviousOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	rec := &recorder{}
	good := rec.step("good")
	good.writeToRoot = "v1"
	if _, err := Build(t.Context(), testOptions(t, out, good)); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(out, ReportFile))
	if err != nil {
		t.Fatalf("the good build's report: %v", err)
	}

	rec2 := &recorder{}
	a, b, c := rec2.step("a"), rec2.step("b"), rec2.step("c")
	a.writeToRoot = "v2"
	b.fail = errors.New("exploded")
	rep, err := Build(t.Context(), testOptions(t, out, a, b, c))
	if err == nil || !strings.Contains(err.Error(), "b: exploded") {
		t.Fatalf("Build() = %v", err)
	}
	want := []string{"a:validate", "b:validate", "c:validate", "a:preflight", "b:preflight", "c:preflight", "a:run", "b:run", "b:cleanup", "a:cleanup"}
	if got := rec2.events(); !slices.Equal(got, want) {
		t.Errorf("events = %v\nwant %v", got, want)
	}
	if rep.Result != ResultFailed || rep.Steps[1].Result != ResultFailed {
		t.Errorf("report = %+v", rep)
	}
	after, err := os.ReadFile(filepath.Join(out, ReportFile))
	if err != nil {
		t.Fatalf("the failed build removed the previous build.json: %v", err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a failed build changed the previous build.json")
	}
	if _, err := os.Stat(filepath.Join(out, "rootfs", "v2")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed build's files reached the output")
	}
	assertNoStaging(t, out)
}

func TestBuildKeepFailed(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	rec := &recorder{}
	a := rec.step("a")
	a.writeToRoot = "partial"
	a.fail = errors.New("boom")
	o := testOptions(t, out, a)
	o.KeepFailed = true
	if _, err := Build(t.Context(), o); err == nil {
		t.Fatal("Build() = nil")
	}
	stage, _ := siblings(out)
	if _, err := os.Stat(filepath.Join(stage, "rootfs", "partial")); err != nil {
		t.Errorf("--keep-failed lost the staging tree: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Error("a kept failed build looks finished")
	}
	// The next build clears it.
	rec2 := &recorder{}
	if _, err := Build(t.Context(), testOptions(t, out, rec2.step("b"))); err != nil {
		t.Fatal(err)
	}
	assertNoStaging(t, out)
}

func TestBuildInterrupted(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	rec := &recorder{}
	a, b := rec.step("a"), rec.step("b")
	var cleanupErr error = errors.New("cleanup did not run")
	a.cleanupCtx = &cleanupErr
	b.block = true
	b.started = make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-b.started
		cancel()
	}()
	rep, err := Build(ctx, testOptions(t, out, a, b))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Build() = %v, want context.Canceled", err)
	}
	if rep.Result != ResultInterrupted {
		t.Errorf("result = %s", rep.Result)
	}
	if cleanupErr != nil {
		t.Errorf("cleanup ran with a cancelled context (or not at all): %v", cleanupErr)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Error("an interrupted build left an output")
	}
	assertNoStaging(t, out)
}

func TestBuildLocked(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	_, lockPath := siblings(out)
	lk, err := fsutil.TryLock(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	rec := &recorder{}
	_, err = Build(t.Context(), testOptions(t, out, rec.step("a")))
	if !errors.Is(err, fsutil.ErrLocked) {
		t.Fatalf("Build() = %v, want ErrLocked", err)
	}
	if slices.Contains(rec.events(), "a:run") {
		t.Error("a step ran without the lock")
	}
}

func TestBuildRefusesForeignDirectory(t *testing.T) {
	out := t.TempDir()
	precious := filepath.Join(out, "thesis.tex")
	os.WriteFile(precious, []byte("years of work"), 0o644)
	rec := &recorder{}
	_, err := Build(t.Context(), testOptions(t, out, rec.step("a")))
	if !errors.Is(err, ErrRefuseReplace) {
		t.Fatalf("Build() = %v, want ErrRefuseReplace", err)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Fatal("krgimage deleted a file it did not write")
	}
	if _, err := Build(t.Context(), testOptions(t, "/", rec.step("a"))); !errors.Is(err, ErrRefuseReplace) {
		t.Errorf("Build(/) = %v, want ErrRefuseReplace", err)
	}
}

func TestBuildExternalRoot(t *testing.T) {
	dir := t.TempDir()
	out, root := filepath.Join(dir, "out"), filepath.Join(dir, "NFSROOT", "kerrighed")
	build := func(file string) error {
		rec := &recorder{}
		s := rec.step("s")
		s.writeToRoot = file
		o := testOptions(t, out, s)
		o.Recipe.Outputs.Rootfs = root
		_, err := Build(t.Context(), o)
		return err
	}
	if err := build("one"); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(out, "rootfs")); err != nil || target != root {
		t.Errorf("out/rootfs -> %q, %v; want a link to %s", target, err, root)
	}
	// A restore into the staging root, killed: its directory is cleared.
	killed := filepath.Join(filepath.Dir(root), "..kerrighed.partial.restore-123")
	os.MkdirAll(filepath.Join(killed, "usr"), 0o755)
	if err := build("two"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(killed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a killed restore's directory survived: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "two")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(root, "one")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the previous image root survived")
	}
	assertNoStaging(t, root)

	// An external root krgimage did not build is never replaced.
	other := filepath.Join(dir, "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "keep"), nil, 0o644)
	rec := &recorder{}
	o := testOptions(t, filepath.Join(dir, "out2"), rec.step("x"))
	o.Recipe.Outputs.Rootfs = other
	if _, err := Build(t.Context(), o); !errors.Is(err, ErrRefuseReplace) {
		t.Errorf("Build() = %v, want ErrRefuseReplace", err)
	}
}

func TestPlan(t *testing.T) {
	rec := &recorder{}
	a, b := rec.step("alpha"), rec.step("b")
	b.invalid = errors.New("b is wrong")
	var buf bytes.Buffer
	err := Plan(t.Context(), testOptions(t, "out", a, b), &buf)
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("Plan() = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"mirror   http://mirror.example/debian (from test)", " 1. alpha  fake alpha", " 2. b      fake b"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("plan does not contain %q:\n%s", want, buf.String())
		}
	}
	if slices.Contains(rec.events(), "alpha:run") || slices.Contains(rec.events(), "alpha:preflight") {
		t.Error("plan ran or preflighted a step")
	}
}

func TestStepsFromRecipe(t *testing.T) {
	r, err := recipes.Parse([]byte(`suite: bookworm
provision:
  - packages: [a1]
  - mtab
  - packages: [b1]
  - run: {script: "true"}
`), "r.yaml", recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	steps := Steps(r)
	var names []string
	for _, s := range steps {
		names = append(names, s.Name())
	}
	if got := strings.Join(names, " "); got != "bootstrap packages mtab packages#2 run" {
		t.Errorf("steps = %s", got)
	}
	var buf bytes.Buffer
	o := testOptions(t, "out")
	o.Recipe, o.Steps = r, nil
	if err := Plan(t.Context(), o, &buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"packages#2", "--no-install-recommends b1", "ln -sf /proc/mounts /etc/mtab", "run inline script (true) with /bin/sh inside the image"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, buf.String())
		}
	}
}
