package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what check reports instead of
// failing the test that drives it.
type recorder struct {
	testing.TB
	failed, fatal bool
	msg           string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.fatal, r.msg = true, true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls check on a recorder in a goroutine of its own, where Fatalf's
// Goexit cannot end the real test.
func run(t *testing.T, path string, got []byte, update bool) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r, path, got, update)
	}()
	<-done
	return r
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	same := filepath.Join(dir, "same")
	if err := os.WriteFile(same, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name        string
		path        string
		got         string
		fatal, fail bool
		msg         string
	}{
		{name: "equal", path: same, got: "a\nb\n"},
		{name: "differs", path: same, got: "a\nc\n", fail: true, msg: `line 2 is "c\n", want "b\n"`},
		{name: "longer", path: same, got: "a\nb\nc", fail: true, msg: `line 3 is "c", want ""`},
		{name: "binary", path: same, got: "a\x00", fail: true, msg: "first difference at byte 1; 2 bytes, want 4"},
		{name: "missing", path: filepath.Join(dir, "none"), got: "", fail: true, fatal: true, msg: "-update creates it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.path, []byte(tt.got), false)
			if r.failed != tt.fail || r.fatal != tt.fatal || !strings.Contains(r.msg, tt.msg) {
				t.Errorf("check(%s, %q) failed %v (fatal %v) with %q; want failed %v (fatal %v) with %q",
					tt.name, tt.got, r.failed, r.fatal, r.msg, tt.fail, tt.fatal, tt.msg)
			}
		})
	}
}

// With -update a golden file is written, in a directory made for it, and
// then holds: the same check without -update passes.
func TestCheckUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "file")
	if r := run(t, path, []byte("fresh\n"), true); r.failed {
		t.Fatalf("check with update: %s", r.msg)
	}
	if r := run(t, path, []byte("fresh\n"), false); r.failed {
		t.Errorf("check after update: %s", r.msg)
	}
	if r := run(t, path, []byte("stale\n"), false); !r.failed {
		t.Error("check after update accepts other content")
	}
}
