package boottest

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/krgimage/krgimage/internal/sha512crypt"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/recipes"
)

func TestWithPassword(t *testing.T) {
	const shadow = "root:!:19700:0:99999:7:::\nalice:$y$j9T$a$b:0:0:99999:7:::\nbob:*:19700::::::\n"
	for _, tc := range []struct{ name, user, want, err string }{
		{"locked root", "root", "root:NEW:19700:0:99999:7:::\nalice:$y$j9T$a$b:0:0:99999:7:::\nbob:*:19700::::::\n", ""},
		// A last change of 0 would have login ask for a new password.
		{"forced change cleared", "alice", "root:!:19700:0:99999:7:::\nalice:NEW::0:99999:7:::\nbob:*:19700::::::\n", ""},
		{"no such user", "carol", "", `no entry for "carol"`},
		{"prefix is not a name", "ro", "", `no entry for "ro"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := withPassword([]byte(shadow), tc.user, "NEW")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("withPassword = %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
	if _, err := withPassword([]byte("root:x\n"), "root", "NEW"); err == nil {
		t.Error("a two-field entry was accepted")
	}
}

func TestLoginFor(t *testing.T) {
	checks := []recipes.Check{{Name: "c", Run: "true"}}
	for _, tc := range []struct {
		name    string
		bt      recipes.BootTest
		user    string
		oneTime bool
		ok      bool
	}{
		{"nothing to run", recipes.BootTest{}, "", false, false},
		{"checks without login", recipes.BootTest{Checks: checks}, "root", true, true},
		{"login without password", recipes.BootTest{Login: &recipes.Login{User: "alice"}, Checks: checks}, "alice", true, true},
		{"recipe's password", recipes.BootTest{Login: &recipes.Login{User: "root", Password: "secret"}}, "root", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, ok := loginFor(&tc.bt)
			if ok != tc.ok || l.User != tc.user || l.OneTime != tc.oneTime {
				t.Fatalf("loginFor = %+v, %v", l, ok)
			}
			if tc.oneTime && len(l.Password) < 32 {
				t.Errorf("one-time password %q is too short", l.Password)
			}
		})
	}
	a, _ := loginFor(&recipes.BootTest{Checks: checks})
	b, _ := loginFor(&recipes.BootTest{Checks: checks})
	if a.Password == b.Password {
		t.Error("two boot tests got the same one-time password")
	}
}

// fakeImage is a root with an /etc/passwd and a root:shadow 0640
// /etc/shadow, in a directory beside the boot test's.
func fakeImage(t *testing.T) (root, work string) {
	t.Helper()
	dir := t.TempDir()
	root, work = filepath.Join(dir, "rootfs"), filepath.Join(dir, "boot-test")
	for _, d := range []string{filepath.Join(root, "etc"), work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "root:x:0:0:root:/root:/bin/bash\nalice:!:1000:1000::/home/alice:/bin/sh\n", 0o644)
	write("shadow", "root:!:19700:0:99999:7:::\n", 0o640)
	if err := os.Chown(filepath.Join(root, "etc", "shadow"), 0, 42); err != nil {
		t.Fatal(err)
	}
	return root, work
}

// The one-time login's shadow: the image's, with the password's hash
// (glibc agrees), the original's owner and mode, on the image's
// filesystem outside it; the image itself untouched, and nothing left
// after the cleanup.
func TestOneTimeLogin(t *testing.T) {
	testenv.RequireRoot(t, "chown to group shadow")
	root, work := fakeImage(t)
	l := consoleLogin{User: "root", Password: sha512crypt.Random(32), OneTime: true}
	bind, cleanup, err := oneTimeLogin(root, work, l)
	if err != nil {
		t.Fatal(err)
	}
	if bind.Target != filepath.Join(root, "etc/shadow") || !strings.HasPrefix(bind.Source, work+"/.login-") {
		t.Errorf("bind %+v", bind)
	}
	b, err := os.ReadFile(bind.Source)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(string(b), ":")
	if len(f) != 9 || f[0] != "root" || f[2] != "19700" {
		t.Fatalf("scratch shadow %q", b)
	}
	out, err := exec.Command("perl", "-e", `print crypt($ARGV[0], $ARGV[1])`, l.Password, f[1]).Output()
	if err != nil || string(out) != f[1] {
		t.Errorf("glibc's crypt of the password gives %q (%v), the shadow holds %q", out, err, f[1])
	}
	fi, _ := os.Stat(bind.Source)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 42 || fi.Mode().Perm() != 0o640 {
		t.Errorf("scratch shadow %o %d:%d, want the original's 0640 0:42", fi.Mode().Perm(), st.Uid, st.Gid)
	}
	if orig, _ := os.ReadFile(filepath.Join(root, "etc/shadow")); string(orig) != "root:!:19700:0:99999:7:::\n" {
		t.Errorf("the image's shadow changed: %q", orig)
	}
	cleanup()
	if m, _ := filepath.Glob(filepath.Join(work, ".login-*")); len(m) != 0 {
		t.Errorf("left after cleanup: %v", m)
	}
}

func TestOneTimeLoginRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(root string) error
		user string
		want string
	}{
		{"unknown user", nil, "carol", `no user "carol"`},
		{"password not in shadow", nil, "alice", `"alice"'s password is not in /etc/shadow`},
		{"shadow is a link", func(root string) error {
			p := filepath.Join(root, "etc/shadow")
			os.Remove(p)
			return os.Symlink("/etc/shadow", p)
		}, "root", "/etc/shadow in the image is not a plain file"},
		{"etc is a link", func(root string) error {
			if err := os.Rename(filepath.Join(root, "etc"), filepath.Join(root, "etc2")); err != nil {
				return err
			}
			return os.Symlink("etc2", filepath.Join(root, "etc"))
		}, "root", "/etc in the image is not a plain directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, work := fakeImage(t)
			if tc.edit != nil {
				if err := tc.edit(root); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err := oneTimeLogin(root, work, consoleLogin{User: tc.user, Password: "p", OneTime: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if m, _ := filepath.Glob(filepath.Join(work, ".login-*")); len(m) != 0 {
				t.Errorf("left after a refusal: %v", m)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	work := t.TempDir()
	secret := sha512crypt.Random(32)
	files := map[string]string{
		"console-node1.log": "Password: " + secret + "\r\nroot@node1:~# ",
		"result.json":       `{"passed": true}`,
		"root/etc/x":        secret, // a scratch copy, removed whole
	}
	for name, content := range files {
		p := filepath.Join(work, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	redact(work, secret, slog.New(slog.NewTextHandler(&logs, nil)))
	if b, _ := os.ReadFile(filepath.Join(work, "console-node1.log")); string(b) != "Password: [redacted]\r\nroot@node1:~# " {
		t.Errorf("console log %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(work, "result.json")); string(b) != files["result.json"] {
		t.Errorf("result.json %q", b)
	}
	if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), "console-node1.log") {
		t.Errorf("log: %s", logs.String())
	}
}
