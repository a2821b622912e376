package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/stagecache"
)

func TestReportCommand(t *testing.T) {
	fixtures := "../../pipeline/testdata/report/"
	empty := filepath.Join(t.TempDir(), "build.json")
	os.WriteFile(empty, []byte("{}"), 0o644)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"summary", []string{"report", fixtures + "current.json"}, ExitOK,
			[]string{"bookworm-nfsroot: success in 41.2s", "packages     11.5s  success  miss, stored"}},
		{"against the previous", []string{"report", fixtures + "current.json", "--previous", fixtures + "previous.json"}, ExitOK,
			[]string{"packages upgraded (1):", "libc6  2.36-9+deb12u10 -> 2.36-9+deb12u13", "outputs added (1):"}},
		{"no build", []string{"report", filepath.Join(t.TempDir(), "nothing")}, ExitFailure, nil},
		{"two builds", []string{"report", "a", "b"}, ExitUsage, nil},
		{"not a build report", []string{"report", empty}, ExitFailure, nil},
		{"no previous build", []string{"report", fixtures + "current.json", "--previous", filepath.Join(t.TempDir(), "nothing")}, ExitFailure, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := execute(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr)
			}
			if tt.code != ExitOK && stdout != "" {
				t.Errorf("printed before failing:\n%s", stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}

func TestCacheCommand(t *testing.T) {
	dir := t.TempDir()
	stages := filepath.Join(dir, "stages")
	// Listing a cache that is not there creates nothing.
	code, stdout, stderr := execute(t, "cache", "ls", "--cache-dir", dir)
	if code != ExitOK || !strings.Contains(stdout, "no stage cache in "+stages) {
		t.Errorf("cache ls of no cache: exit %d: %s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(stages); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cache ls created %s", stages)
	}
	// A running build holds the cache: prune must refuse, not wait.
	s, err := stagecache.Open(stages, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = execute(t, "cache", "ls", "--cache-dir", dir)
	if code != ExitOK || !strings.Contains(stdout, "0 entries, 0 B in "+stages) {
		t.Errorf("cache ls: exit %d: %s%s", code, stdout, stderr)
	}
	code, _, stderr = execute(t, "cache", "prune", "--cache-dir", dir)
	if code != ExitFailure || !strings.Contains(stderr, "in use by a running build") {
		t.Errorf("prune while a build runs: exit %d: %s", code, stderr)
	}
	s.Close()
	os.MkdirAll(filepath.Join(dir, "stages", ".tmp-crashed"), 0o700)
	code, stdout, stderr = execute(t, "cache", "prune", "--cache-dir", dir, "--max-size", "1G")
	if code != ExitOK || !strings.Contains(stdout, "removed 0 entries (0 B) and 1 leftovers") {
		t.Errorf("prune: exit %d: %s%s", code, stdout, stderr)
	}
	for _, bad := range [][]string{{"cache", "prune", "--max-size", "lots"}, {"cache", "prune", "--keep", "-1"}, {"cache", "nope"}} {
		if code, _, _ := execute(t, append(bad, "--cache-dir", dir)...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, ExitUsage)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1000", 1000, true},
		{"500M", 500 << 20, true},
		{"20G", 20 << 30, true},
		{"1.5GiB", 3 << 29, true},
		{"2 TB", 2 << 40, true},
		{"lots", 0, false},
		{"5X", 0, false},
		{"-1G", 0, false},
	} {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v", tt.in, got, err)
		}
	}
}
