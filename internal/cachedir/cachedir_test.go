package cachedir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
)

// nobody is the uid that plays "someone else".
const nobody = 65534

func mkdir(t *testing.T, p string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	// Chmod: MkdirAll's mode goes through the umask and drops sticky.
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func lchown(t *testing.T, p string, uid int) {
	t.Helper()
	if err := os.Lchown(p, uid, -1); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCreatesPrivate(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "cache")
	got, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got != dir {
		t.Errorf("Open = %s, want %s", got, dir)
	}
	for _, p := range []string{filepath.Join(base, "a"), filepath.Join(base, "a", "b"), dir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v, want 0700", p, fi.Mode().Perm())
		}
	}
	if _, err := Open(dir); err != nil {
		t.Errorf("opening it again: %v", err)
	}
	// A relative path comes back absolute.
	t.Chdir(base)
	if got, err := Open("rel"); err != nil || got != filepath.Join(base, "rel") {
		t.Errorf("Open(rel) = %s, %v", got, err)
	}
}

func TestCheckCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x", "cache")
	if err := Check(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Dir(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check created %s", filepath.Dir(dir))
	}
	if _, err := Open(""); !errors.Is(err, ErrNoDefault) {
		t.Errorf("Open(\"\") = %v, want ErrNoDefault", err)
	}
}

// TestRefusals sets up each way a cache directory could be swapped or
// written by someone else, as root so that it can give files away.
func TestRefusals(t *testing.T) {
	testenv.RequireRoot(t, "chown to another user")
	tests := []struct {
		name string
		// setup returns the cache directory to open under base.
		setup func(t *testing.T, base string) string
		// path is what the error blames, relative to base; "" for no error.
		path   string
		reason string
	}{
		{"writable by others", func(t *testing.T, base string) string {
			mkdir(t, base+"/c", 0o777)
			return base + "/c"
		}, "c", "is writable by others (mode 0777)"},
		{"writable by group", func(t *testing.T, base string) string {
			mkdir(t, base+"/c", 0o770)
			return base + "/c"
		}, "c", "is writable by its group (mode 0770)"},
		{"owned by someone else", func(t *testing.T, base string) string {
			mkdir(t, base+"/c", 0o700)
			lchown(t, base+"/c", nobody)
			return base + "/c"
		}, "c", "is owned by uid 65534, not by this user (uid 0)"},
		{"readable by others in a shared directory", func(t *testing.T, base string) string {
			mkdir(t, base+"/tmp", fs.ModeSticky|0o777)
			mkdir(t, base+"/tmp/c", 0o755)
			return base + "/tmp/c"
		}, "tmp/c", "is open to others (mode 0755) inside the shared directory"},
		{"private in a shared directory", func(t *testing.T, base string) string {
			mkdir(t, base+"/tmp", fs.ModeSticky|0o777)
			mkdir(t, base+"/tmp/c", 0o700)
			return base + "/tmp/c"
		}, "", ""},
		{"someone else's in a shared directory", func(t *testing.T, base string) string {
			mkdir(t, base+"/tmp", fs.ModeSticky|0o777)
			mkdir(t, base+"/tmp/c", 0o700)
			lchown(t, base+"/tmp/c", nobody)
			return base + "/tmp/c"
		}, "tmp/c", "is owned by uid 65534"},
		{"readable by others elsewhere", func(t *testing.T, base string) string {
			mkdir(t, base+"/c", 0o755)
			return base + "/c"
		}, "", ""},
		{"under a world-writable directory", func(t *testing.T, base string) string {
			mkdir(t, base+"/w", 0o777)
			mkdir(t, base+"/w/c", 0o700)
			return base + "/w/c"
		}, "w", "is writable by others (mode 0777) and not sticky"},
		{"not yet made under a world-writable directory", func(t *testing.T, base string) string {
			mkdir(t, base+"/w", 0o777)
			return base + "/w/x/c"
		}, "w", "and not sticky"},
		{"under someone else's directory", func(t *testing.T, base string) string {
			mkdir(t, base+"/home/alice/c", 0o700)
			lchown(t, base+"/home/alice", nobody)
			return base + "/home/alice/c"
		}, "home/alice", "is owned by uid 65534, who could replace what is in it"},
		{"a link of ours", func(t *testing.T, base string) string {
			mkdir(t, base+"/real", 0o700)
			symlink(t, "real", base+"/c")
			return base + "/c"
		}, "", ""},
		{"someone else's link", func(t *testing.T, base string) string {
			mkdir(t, base+"/real", 0o700)
			symlink(t, "real", base+"/c")
			lchown(t, base+"/c", nobody)
			return base + "/c"
		}, "c", "is a symbolic link owned by uid 65534"},
		{"a link above, someone else's", func(t *testing.T, base string) string {
			mkdir(t, base+"/real/c", 0o700)
			symlink(t, "real", base+"/l")
			lchown(t, base+"/l", nobody)
			return base + "/l/c"
		}, "l", "is a symbolic link owned by uid 65534"},
		{"a link of ours into a world-writable directory", func(t *testing.T, base string) string {
			mkdir(t, base+"/w/c", 0o700)
			if err := os.Chmod(base+"/w", 0o777); err != nil {
				t.Fatal(err)
			}
			symlink(t, base+"/w/c", base+"/c")
			return base + "/c"
		}, "w", "is writable by others (mode 0777) and not sticky"},
		{"a link of ours to someone else's directory", func(t *testing.T, base string) string {
			mkdir(t, base+"/theirs", 0o700)
			lchown(t, base+"/theirs", nobody)
			symlink(t, "theirs", base+"/c")
			return base + "/c"
		}, "theirs", "is owned by uid 65534, not by this user"},
		{"a link through dot-dot", func(t *testing.T, base string) string {
			mkdir(t, base+"/w", 0o777)
			mkdir(t, base+"/d/e", 0o700)
			mkdir(t, base+"/w/c", 0o700)
			// d/up/c: up points into e, whose parent is d, then to w.
			symlink(t, "e/../../w", base+"/d/up")
			return base + "/d/up/c"
		}, "w", "and not sticky"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dir := tt.setup(t, base)
			_, err := Open(dir)
			if tt.path == "" {
				if err != nil {
					t.Fatalf("Open(%s): %v", dir, err)
				}
				return
			}
			var ue *UntrustedError
			if !errors.Is(err, ErrUntrusted) || !errors.As(err, &ue) {
				t.Fatalf("Open(%s) = %v, want an UntrustedError", dir, err)
			}
			if want := filepath.Join(base, tt.path); ue.Path != want || !strings.Contains(ue.Reason, tt.reason) {
				t.Errorf("refused %s %q, want %s %q", ue.Path, ue.Reason, want, tt.reason)
			}
			if !strings.HasSuffix(err.Error(), ": refusing it; fix with "+ue.Fix+" or use --cache-dir") {
				t.Errorf("error %q does not say how to fix it", err)
			}
			if err := Check(dir); !errors.Is(err, ErrUntrusted) {
				t.Errorf("Check(%s) = %v, want ErrUntrusted", dir, err)
			}
		})
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// The message the issue asks for, word for word.
func TestUntrustedMessage(t *testing.T) {
	testenv.RequireRoot(t, "a cache directory of root's")
	dir := filepath.Join(t.TempDir(), "x")
	mkdir(t, dir, 0o777)
	_, err := Open(dir)
	want := "cache directory " + dir + " is writable by others (mode 0777): refusing it; fix with chmod go-w " + dir + " or use --cache-dir"
	if err == nil || err.Error() != want {
		t.Errorf("Open = %v\nwant %s", err, want)
	}
}

func TestRefusedLeavesNothing(t *testing.T) {
	base := t.TempDir()
	mkdir(t, base+"/w", 0o777)
	if _, err := Open(base + "/w/x/c"); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("Open = %v, want ErrUntrusted", err)
	}
	if _, err := os.Lstat(base + "/w/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused Open created %s/w/x", base)
	}
}

func TestLinkLoopAndFile(t *testing.T) {
	base := t.TempDir()
	symlink(t, "b", base+"/a")
	symlink(t, "a", base+"/b")
	if _, err := Open(base + "/a/c"); err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
		t.Errorf("Open through a loop = %v", err)
	}
	if err := os.WriteFile(base+"/f", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(base + "/f"); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("Open of a file = %v", err)
	}
}

func TestDefault(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		euid int
		want string
		err  error
	}{
		{"xdg", map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/h"}, 1000, "/x/krgimage", nil},
		{"home", map[string]string{"HOME": "/h"}, 1000, "/h/.cache/krgimage", nil},
		{"root without a home", nil, 0, SystemDir, nil},
		{"user without a home", nil, 1000, "", ErrNoDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Default(func(k string) string { return tt.env[k] }, tt.euid)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("Default = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
			if err != nil && !strings.Contains(err.Error(), "--cache-dir") {
				t.Errorf("%v does not ask for --cache-dir", err)
			}
		})
	}
}
