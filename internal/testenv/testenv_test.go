package testenv

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Every skip in the tree goes through Skip: a t.Skip elsewhere would pass
// CI without running.
func TestNoOtherSkips(t *testing.T) {
	direct := regexp.MustCompile(`\b[tb]\.(Skip|Skipf|SkipNow)\(`)
	if found := SourceLines(t, direct); len(found) > 0 {
		t.Errorf("skips that do not go through testenv.Skip:\n%s", strings.Join(found, "\n"))
	}
}

// Skip skips by hand and fails under strict mode: the test runs itself
// again both ways.
func TestSkipFailsWhenStrict(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") != "" {
		Skip(t, "the thing is missing")
		return
	}
	for _, tc := range []struct {
		strict string
		fails  bool
	}{{"", false}, {"1", true}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipFailsWhenStrict$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", Strict+"="+tc.strict)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.fails || !strings.Contains(string(out), "the thing is missing") {
			t.Errorf("%s=%q: failed %v, want %v:\n%s", Strict, tc.strict, failed, tc.fails, out)
		}
		if !tc.fails && !strings.Contains(string(out), "--- SKIP") {
			t.Errorf("not strict: want a skip:\n%s", out)
		}
	}
}
