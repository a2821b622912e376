package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
)

func requirePXELinux(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/lib/PXELINUX/pxelinux.0"); err != nil {
		testenv.Missing(t, "pxelinux not installed (make deps installs it)")
	}
}

// --install says what it wrote and which backups it made, then how to
// reload the services; run again, it changes nothing.
func TestNetbootInstallReport(t *testing.T) {
	requirePXELinux(t)
	image := fakeImage(t, "6.1.0-50-amd64")
	server := t.TempDir()
	conf := filepath.Join(server, "etc/dhcp/dhcpd.conf")
	os.MkdirAll(filepath.Dir(conf), 0o755)
	if err := os.WriteFile(conf, []byte("# old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := execute(t, "netboot", "bookworm-nfsroot", "--image", image, "--install", server)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"installed " + conf + " (the old one is kept as " + conf + ".krgimage-bak)\n",
		"installed " + filepath.Join(server, "srv/tftp/pxelinux.cfg/default") + "\n",
		"Installed. Reload the services:\n  exportfs -avr\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = execute(t, "netboot", "bookworm-nfsroot", "--image", image, "--install", server)
	if code != ExitOK || strings.Contains(stdout, "installed ") || !regexp.MustCompile(`(?m)^\d+ files already up to date$`).MatchString(stdout) {
		t.Errorf("second install (exit %d):\n%s", code, stdout)
	}
	if m, _ := filepath.Glob(conf + ".krgimage-bak.*"); len(m) != 0 {
		t.Errorf("an unchanged file was backed up: %v", m)
	}
}

// A symlinked /etc/dhcp stops the install with the link's name; what was
// installed before it is listed, nothing is written where it points.
func TestNetbootInstallSymlink(t *testing.T) {
	requirePXELinux(t)
	server, elsewhere := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(server, "etc"), 0o755)
	link := filepath.Join(server, "etc/dhcp")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := execute(t, "netboot", "bookworm-nfsroot", "--image", fakeImage(t, "6.1.0-50-amd64"), "--install", server)
	if code != ExitFailure || !strings.Contains(stderr, link+" is a symlink to "+elsewhere) {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "installed "+filepath.Join(server, "etc/default/tftpd-hpa")) || strings.Contains(stdout, "Reload") {
		t.Errorf("stdout:\n%s", stdout)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("written through the link: %v", ents)
	}
}

// tftp.root: / is refused by validate, at its line and column, and by
// netboot before it writes anything.
func TestNetbootSystemTFTPRoot(t *testing.T) {
	requirePXELinux(t)
	b, err := os.ReadFile("../../recipes/bookworm-nfsroot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := regexp.MustCompile(`(?m)^netboot:.*$`).ReplaceAllString(string(b), "netboot:\n  tftp: {root: /}")
	p := writeRecipe(t, src)
	line := 1 + strings.Count(src[:strings.Index(src, "root: /}")], "\n")
	want := regexp.MustCompile(regexp.QuoteMeta(p) + `:` + strconv.Itoa(line) + `:16: netboot\.tftp\.root: invalid tftp root "/": / is a system directory`)
	code, _, stderr := execute(t, "validate", p)
	if code != ExitFailure || !want.MatchString(stderr) {
		t.Errorf("validate: exit %d: %s", code, stderr)
	}
	server := t.TempDir()
	code, _, stderr = execute(t, "netboot", p, "--image", fakeImage(t, "6.1.0-50-amd64"), "--install", server)
	if code != ExitFailure || !want.MatchString(stderr) {
		t.Errorf("netboot --install: exit %d: %s", code, stderr)
	}
	if ents, _ := os.ReadDir(server); len(ents) != 0 {
		t.Errorf("written: %v", ents)
	}
}
