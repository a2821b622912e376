package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// SourceLines returns the lines of the repository's Go files that match
// re, as "PATH:LINE: TEXT" with PATH relative to the repository's top,
// leaving out the calling test's own package, which names what it looks
// for. Tests hold the whole tree to one rule with it: one way to skip,
// one -update flag.
func SourceLines(t testing.TB, re *regexp.Regexp) []string {
	t.Helper()
	_, caller, _, _ := runtime.Caller(1)
	_, self, _, _ := runtime.Caller(0)
	here, top := filepath.Dir(caller), filepath.Join(filepath.Dir(self), "..", "..")
	var found []string
	err := filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == ".cache") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, ".go") || filepath.Dir(p) == here {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, l := range strings.Split(string(b), "\n") {
			if re.MatchString(l) {
				rel, _ := filepath.Rel(top, p)
				found = append(found, rel+":"+strconv.Itoa(i+1)+": "+strings.TrimSpace(l))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
