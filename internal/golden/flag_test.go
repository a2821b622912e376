package golden

import (
	"regexp"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
)

// No test declares an -update flag of its own: one flag, one way to
// accept golden files.
func TestOneUpdateFlag(t *testing.T) {
	decl := regexp.MustCompile(`flag\.(Bool|BoolVar)\(.*"update"`)
	if found := testenv.SourceLines(t, decl); len(found) > 0 {
		t.Errorf("-update flags besides golden's (use golden.Check or golden.Update):\n%s", strings.Join(found, "\n"))
	}
}
