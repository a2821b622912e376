package pipeline

import (
	"slices"
	"testing"
	"time"

	"github.com/krgimage/krgimage/recipes"
)

// build.json keeps the values of public variables only; the others by
// name.
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
}
