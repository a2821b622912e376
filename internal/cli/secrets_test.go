package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/pipeline"
)

const secretsRecipe = `name: s
suite: bookworm
components: [main]
public_variables: [MODE, GREETING]
nfsroot: {server: 10.0.0.1, path: /srv/nfs, mode: "${MODE:-ro}"}
provision:
  - run:
      env: {GREETING: hello, API_TOKEN: "${TOKEN:-none}"}
      script: "true"
`

// plan shows run.env entries and variables by name; only those the
// recipe lists in public_variables with their values.
func TestPlanWithholdsValues(t *testing.T) {
	p := writeRecipe(t, secretsRecipe)
	t.Setenv("TOKEN", "s3cr3t-value")
	code, stdout, stderr := execute(t, "plan", p)
	if code != ExitOK {
		t.Fatalf("plan: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stdout+stderr, "s3cr3t-value") {
		t.Errorf("plan shows a withheld value:\n%s", stdout)
	}
	for _, want := range []string{"GREETING=hello", "API_TOKEN=(withheld"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout)
		}
	}
}

// boot-test reads the recipe as the build did: a withheld variable the
// build was given must be given again, not silently defaulted.
func TestBootTestAsksForWithheldVariables(t *testing.T) {
	out := t.TempDir()
	var rep pipeline.Report
	rep.Recipe.File = writeRecipe(t, secretsRecipe)
	rep.Recipe.Variables = map[string]string{"MODE": "rw"}
	rep.Recipe.Withheld = []string{"TOKEN"}
	rep.Recipe.Name, rep.Started = "s", time.Unix(1, 0)
	b, err := json.Marshal(&rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, pipeline.ReportFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	a := &app{lookupEnv: func(string) (string, bool) { return "", false }, getenv: func(string) string { return "" }}
	_, err = a.recipeOf(out, &bootTestOptions{})
	if err == nil || !strings.Contains(err.Error(), "TOKEN") {
		t.Fatalf("recipeOf without TOKEN: %v, want an error naming it", err)
	}
	a.lookupEnv = func(k string) (string, bool) { return "again", k == "TOKEN" }
	r, err := a.recipeOf(out, &bootTestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.NFSRoot.Mode != "rw" {
		t.Errorf("mode %q: the public variable was not applied", r.NFSRoot.Mode)
	}
}
