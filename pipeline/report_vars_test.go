package pipeline

import (
	"slices"
	"strings"
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
