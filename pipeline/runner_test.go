package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/krgimage/krgimage/snapshot"
)

// outputProbe is an output-only step that looks at the root when it runs.
type outputProbe struct {
	*fakeStep
	mtime time.Time
}

func (*outputProbe) outputOnly() {}

func (p *outputProbe) Run(ctx context.Context, env *Env) error {
	fi, err := os.Stat(filepath.Join(env.Root, p.writeToRoot))
	if err != nil {
		return err
	}
	p.mtime = fi.ModTime()
	return nil
}

// fakeArchive is an output-only step the stage cache keeps, as it keeps
// the snapshot.
type fakeArchive struct{ *fakeStep }

func (*fakeArchive) outputOnly() {}
func (*fakeArchive) normalizedOptions(*Env) (snapshot.Options, error) {
	return snapshot.Options{Compression: snapshot.Zstd, Level: 3}, nil
}

func TestWithNormalize(t *testing.T) {
	rec := &recorder{}
	root1, root2 := rec.step("a"), rec.step("b")
	out := &outputProbe{fakeStep: rec.step("out")}
	arch := &fakeArchive{rec.step("archive")}
	finished := func() {}
	for _, tt := range []struct {
		name       string
		steps      []BuildStep
		want       []string
		finished   bool
		archFollow bool
	}{
		{"root steps only", []BuildStep{root1, root2}, []string{"a", "b", "normalize"}, false, false},
		{"outputs follow", []BuildStep{root1, root2, out, arch}, []string{"a", "b", "normalize", "out", "archive"}, true, true},
		{"outputs only", []BuildStep{out}, []string{"normalize", "out"}, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cache := &stageCache{last: lastRootStep(tt.steps)}
			list := withNormalize(tt.steps, cache, &Report{}, time.Now, finished)
			var names []string
			for _, s := range list {
				names = append(names, s.s.Name())
				if _, ok := s.s.(added); ok != (s.i < 0) {
					t.Errorf("%s: index %d", s.s.Name(), s.i)
				}
				if s.i >= 0 && tt.steps[s.i] != s.s {
					t.Errorf("%s: index %d is %s", s.s.Name(), s.i, tt.steps[s.i].Name())
				}
				if n, ok := s.s.(*normalizeStep); ok {
					if (n.finished != nil) != tt.finished || n.archiveFollows != tt.archFollow {
						t.Errorf("normalize: finished %v, archive follows %v", n.finished != nil, n.archiveFollows)
					}
				}
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("run order %v, want %v", names, tt.want)
			}
		})
	}
}

// Normalization runs as a step of the build, after the last step that
// changes the root and before the output steps read it; build.json reports
// it apart, not among the recipe's steps.
func TestNormalizeBeforeOutputs(t *testing.T) {
	rec := &recorder{}
	a := rec.step("a")
	a.writeToRoot = "etc-a"
	probe := &outputProbe{fakeStep: rec.step("probe")}
	probe.writeToRoot = "etc-a"
	o := testOptions(t, filepath.Join(t.TempDir(), "out"), a, probe)
	epoch := time.Unix(1000000000, 0)
	o.SourceDateEpoch = &epoch
	rep, err := Build(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !probe.mtime.Equal(epoch) {
		t.Errorf("the output step saw the root unnormalized: mtime %v, want %v", probe.mtime, epoch)
	}
	var names []string
	for _, s := range rep.Steps {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"a", "probe"}) {
		t.Errorf("build.json's steps %v, want [a probe]", names)
	}
	if rep.Normalize == nil || rep.Normalize.Skipped != "" || rep.Normalize.Clamped == 0 {
		t.Errorf("build.json's normalize = %+v", rep.Normalize)
	}
}
