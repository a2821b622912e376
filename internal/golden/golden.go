package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata with what the tests produce")

// Update reports whether the test binary runs with -update, for a test
// that regenerates more than single files (a corpus of archives, say).
func Update() bool { return *update }

// Check fails t unless got equals the golden file at path. With -update
// it first writes got there, creating the directory.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	check(t, path, got, *update)
}

func check(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("updating the golden file: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("updating the golden file: %v", err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	const hint = "go test -update to accept, then review the diff"
	if !isText(got) {
		t.Errorf("%s differs from its golden file (%s): %s", path, hint, firstByte(got, want))
		return
	}
	t.Errorf("%s differs from its golden file (%s): %s; got:\n%s", path, hint, firstLine(got, want), got)
}

// isText tells output worth printing from a binary one (a tar archive)
// that would only flood the log.
func isText(b []byte) bool {
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

func firstByte(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("first difference at byte %d; %d bytes, want %d", i, len(got), len(want))
}

// firstLine says where got and want first differ, by line, so that
// a long file's mismatch need not be found by eye.
func firstLine(got, want []byte) string {
	g, w := bytes.SplitAfter(got, []byte("\n")), bytes.SplitAfter(want, []byte("\n"))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl []byte
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if !bytes.Equal(gl, wl) {
			return fmt.Sprintf("line %d is %q, want %q", i+1, gl, wl)
		}
	}
	return "no line differs"
}
