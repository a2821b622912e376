package boottest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/snapshot"
)

func TestWithDefaults(t *testing.T) {
	section := &recipes.BootTest{Network: "netns", Nodes: 2, Timeout: recipes.Duration{Duration: time.Minute}}
	tests := []struct {
		name        string
		o           Options
		wantNetwork string
		wantNodes   int
		wantTimeout time.Duration
	}{
		{"no section: its defaults", Options{Recipe: &recipes.Recipe{}}, "user", 1, 10 * time.Minute},
		{"the recipe's section", Options{Recipe: &recipes.Recipe{BootTest: section}}, "netns", 2, time.Minute},
		{"options win", Options{Recipe: &recipes.Recipe{BootTest: section}, Network: "user", Nodes: 1, Timeout: time.Second}, "user", 1, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, bt := withDefaults(tt.o)
			if o.Network != tt.wantNetwork || o.Nodes != tt.wantNodes || o.Timeout != tt.wantTimeout {
				t.Errorf("withDefaults() = network %q, nodes %d, timeout %v; want %q, %d, %v", o.Network, o.Nodes, o.Timeout, tt.wantNetwork, tt.wantNodes, tt.wantTimeout)
			}
			if tt.o.Recipe.BootTest == nil && !reflect.DeepEqual(bt, recipes.DefaultBootTest()) {
				t.Errorf("without a section the nodes boot with %+v, not the section's defaults", bt)
			}
			if tt.o.Recipe.BootTest != nil && bt != tt.o.Recipe.BootTest {
				t.Errorf("the recipe's section was not used")
			}
			if o.Clock == nil {
				t.Error("no clock")
			}
		})
	}
}

func TestCheckReports(t *testing.T) {
	passed := []NodeResult{{Name: "n1", Passed: true, Phase: PhaseLogin}}
	failed := []NodeResult{{Name: "n1", Phase: PhaseKernel, Error: "no kernel"}}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		nodes   []NodeResult
		wantErr error
		verdict string
	}{
		{"passed", t.Context(), passed, nil, "PASS n1: login reached"},
		{"node failed", t.Context(), failed, ErrFailed, "FAIL n1: FAILED at kernel"},
		{"interrupted", cancelled, passed, context.Canceled, "FAIL n1: login reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &plan{work: t.TempDir()}
			res, err := check(tt.ctx, p, &Result{Nodes: tt.nodes})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("check() = %v, want %v", err, tt.wantErr)
			}
			if res.Passed != (tt.wantErr == nil) || !strings.HasPrefix(res.Verdict, tt.verdict) {
				t.Errorf("passed %v, verdict %q; want prefix %q", res.Passed, res.Verdict, tt.verdict)
			}
			b, err := os.ReadFile(filepath.Join(p.work, "result.json"))
			if err != nil {
				t.Fatal(err)
			}
			var back Result
			if err := json.Unmarshal(b, &back); err != nil || back.Verdict != res.Verdict || back.Passed != res.Passed {
				t.Errorf("result.json says %+v (%v), want the verdict %q", back, err, res.Verdict)
			}
			v, _ := os.ReadFile(filepath.Join(p.work, "verdict"))
			if string(v) != res.Verdict+"\n" {
				t.Errorf("verdict file %q, want %q", v, res.Verdict)
			}
		})
	}
}

func TestCheckFailsAChangedReadOnlyRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "motd"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := snapshot.TreeManifest(t.Context(), root, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &plan{o: Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, root: root, work: t.TempDir(), before: before}
	res, err := check(t.Context(), p, &Result{Nodes: []NodeResult{{Name: "n1", Passed: true, Phase: PhaseLogin}}})
	if err != nil || res.RootUnchanged == nil || !*res.RootUnchanged {
		t.Fatalf("unchanged root: check() = %+v, %v", res, err)
	}
	if err := os.WriteFile(filepath.Join(root, "motd"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = check(t.Context(), p, &Result{Nodes: []NodeResult{{Name: "n1", Passed: true, Phase: PhaseLogin}}})
	if !errors.Is(err, ErrFailed) || res.Passed || res.RootUnchanged == nil || *res.RootUnchanged {
		t.Fatalf("changed root: check() = %+v, %v; want a failure", res, err)
	}
	if len(res.RootChanges) == 0 || !strings.Contains(res.RootChanges[0], "motd") || !strings.HasSuffix(res.Verdict, "the read-only root was modified") {
		t.Errorf("changes %q, verdict %q: want motd named", res.RootChanges, res.Verdict)
	}
}
