package cli

import (
	"bytes"
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

// expandedRecipe expands TOKEN, withheld, into a description, a package
// name, a path and run env entries, and SITE, public, next to it.
const expandedRecipe = `name: s
suite: bookworm
components: [main]
description: "for ${SITE}, token ${TOKEN}"
public_variables: [SITE, GREETING]
provision:
  - packages: ["${TOKEN}-tools"]
  - write: {path: "/etc/${TOKEN}", content: x}
  - run:
      env: {GREETING: "hello ${TOKEN}", API_TOKEN: "${TOKEN}"}
      script: "true"
`

// plan shows run.env entries and variables by name; only those the
// recipe lists in public_variables with their values. A withheld value
// shows nowhere, wherever it was expanded.
func TestPlanWithholdsValues(t *testing.T) {
	t.Setenv("TOKEN", "s3cr3t-value")
	t.Setenv("SITE", "visible-site")
	tests := []struct {
		name, recipe string
		want         []string
	}{
		{"run env", secretsRecipe, []string{"GREETING=hello", "API_TOKEN=(withheld"}},
		{"expanded", expandedRecipe, []string{
			"for visible-site, token ${TOKEN}", "SITE=visible-site, TOKEN (withheld)",
			"${TOKEN}-tools", "write /etc/${TOKEN} ", "GREETING=hello ${TOKEN}", "API_TOKEN=(withheld",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := execute(t, "plan", writeRecipe(t, tt.recipe))
			if code != ExitOK {
				t.Fatalf("plan: exit %d\n%s", code, stderr)
			}
			if strings.Contains(stdout+stderr, "s3cr3t-value") {
				t.Errorf("plan shows a withheld value:\n%s%s", stdout, stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(stdout, want) {
					t.Errorf("plan lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
}

// What else the commands print for people hides a withheld value too:
// errors, the recipe --print shows, and the log, which carries every
// subprocess's output.
func TestCommandsWithholdValues(t *testing.T) {
	t.Setenv("TOKEN", "s3cr3t-value")
	t.Setenv("SITE", "visible-site")
	missing := writeRecipe(t, strings.Replace(expandedRecipe, `script: "true"`, `file: /nonexistent/${TOKEN}.sh`, 1))
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"error", []string{"plan", missing}, ExitFailure, "/nonexistent/${TOKEN}.sh"},
		{"validate --print", []string{"validate", "--print", writeRecipe(t, expandedRecipe)}, ExitOK, "/etc/${TOKEN}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := execute(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, stderr)
			}
			if strings.Contains(stdout+stderr, "s3cr3t-value") {
				t.Errorf("%s shows a withheld value:\n%s%s", tt.name, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("%s lacks %q:\n%s%s", tt.name, tt.want, stdout, stderr)
			}
		})
	}
	t.Run("log", func(t *testing.T) {
		for _, format := range []string{"text", "json"} {
			var stderr bytes.Buffer
			a := &app{stderr: &stderr, logFormat: format, lookupEnv: os.LookupEnv}
			if err := a.setup(); err != nil {
				t.Fatal(err)
			}
			if _, err := a.loadRecipe(writeRecipe(t, expandedRecipe), &recipeFlags{}); err != nil {
				t.Fatal(err)
			}
			a.log.Info("Unpacking s3cr3t-value-tools", "path", "/etc/s3cr3t-value", "site", "visible-site")
			if got := stderr.String(); strings.Contains(got, "s3cr3t-value") || !strings.Contains(got, "${TOKEN}-tools") || !strings.Contains(got, "visible-site") {
				t.Errorf("%s log:\n%s", format, got)
			}
		}
	})
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
