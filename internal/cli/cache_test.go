package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/cachedir"
)

func TestDefaultCacheDir(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"xdg", map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/krgimage"},
		{"home", map[string]string{"HOME": "/h"}, "/h/.cache/krgimage"},
		{"no home", nil, cachedir.SystemDir},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{getenv: func(k string) string { return tt.env[k] }}
			got, err := a.defaultCacheDir()
			if tt.env == nil && os.Geteuid() != 0 {
				// Only root has somewhere to default to without a home.
				if !errors.Is(err, cachedir.ErrNoDefault) || !strings.Contains(err.Error(), "--cache-dir") {
					t.Errorf("defaultCacheDir = %q, %v; want ErrNoDefault asking for --cache-dir", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("defaultCacheDir = %q, %v; want %q", got, err, tt.want)
			}
			if strings.HasPrefix(got, os.TempDir()) {
				t.Errorf("defaults to the shared %s", got)
			}
		})
	}
}

// Without HOME and XDG_CACHE_HOME, cache ls looks in root's system cache
// directory, never in /tmp.
func TestCacheLsWithoutHome(t *testing.T) {
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	code, stdout, stderr := execute(t, "cache", "ls")
	if os.Geteuid() != 0 {
		if code != ExitFailure || !strings.Contains(stderr, "--cache-dir") {
			t.Errorf("cache ls without a home: exit %d, stderr %q; want a failure asking for --cache-dir", code, stderr)
		}
		return
	}
	if code != ExitOK || !strings.Contains(stdout, filepath.Join(cachedir.SystemDir, "stages")) {
		t.Errorf("cache ls without a home: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// Every command that opens the cache refuses one others can write.
func TestCommandsRefuseUntrustedCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.MkdirAll(filepath.Join(dir, "stages"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	recipe := writeRecipe(t, "suite: trixie\nvariant: minbase\n")
	// The stage cache's directory is below it; lock opens it itself.
	want := []string{dir + " is writable by others (mode 0777)", ": refusing it; fix with chmod go-w " + dir + " or use --cache-dir"}
	for _, args := range [][]string{
		{"cache", "ls", "--cache-dir", dir},
		{"cache", "prune", "--cache-dir", dir},
		{"lock", recipe, "--mirror", "http://127.0.0.1:9/debian", "--cache-dir", dir, "-o", filepath.Join(t.TempDir(), "x.lock")},
	} {
		code, _, stderr := execute(t, args...)
		if code != ExitFailure || !strings.Contains(stderr, want[0]) || !strings.Contains(stderr, want[1]) {
			t.Errorf("krgimage %s: exit %d, stderr %q\nwant it to say %q", strings.Join(args, " "), code, stderr, want)
		}
	}
}
