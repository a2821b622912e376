package golden

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// No test declares an -update flag of its own: one flag, one way to
// accept golden files.
func TestOneUpdateFlag(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	here := filepath.Dir(file)
	top := filepath.Join(here, "..", "..")
	decl := regexp.MustCompile(`flag\.(Bool|BoolVar)\(.*"update"`)
	var found []string
	err := filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == ".cache") {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(top, p)
		if !strings.HasSuffix(p, ".go") || filepath.Dir(p) == here {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, l := range strings.Split(string(b), "\n") {
			if decl.MatchString(l) {
				found = append(found, rel+":"+strconv.Itoa(i+1)+": "+strings.TrimSpace(l))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Errorf("-update flags besides golden's (use golden.Check or golden.Update):\n%s", strings.Join(found, "\n"))
	}
}
