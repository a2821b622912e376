package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
)

func execute(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Execute(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeRecipe(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateThreeMistakes(t *testing.T) {
	p := writeRecipe(t, `suite: bookworm
variant: minbse
cluster:
  subnet: 10.0.0.0/24
  server: {ip: 10.0.0.1}
  nodes:
    - {name: n1, ip: 10.0.0.10, mac: "52:54:00:00:00:01"}
    - {name: n2, ip: 10.0.0.10}
nfsroot:
  path: NFSROOT/kerrighed
`)
	code, _, stderr := execute(t, "validate", p)
	if code != ExitFailure {
		t.Errorf("exit = %d, want %d", code, ExitFailure)
	}
	for _, want := range []string{
		"the recipe has 3 problems",
		p + ":2:10: variant: invalid value \"minbse\" (allowed: important, minbase, buildd)",
		p + ":8:22: cluster.nodes[1].ip: address 10.0.0.10 of node n2 is already used by node n1",
		p + ":10:9: nfsroot.path: invalid value \"NFSROOT/kerrighed\": expected an absolute path",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestValidateShipped(t *testing.T) {
	code, stdout, stderr := execute(t, "validate", "bookworm-nfsroot", "kerrighed-lenny")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "embedded:kerrighed-lenny.yaml: ok") {
		t.Errorf("stdout = %q", stdout)
	}
	code, stdout, _ = execute(t, "validate", "--print", "--set", "KRG_USER=alice", "kerrighed-lenny")
	if code != ExitOK || !strings.Contains(stdout, "name: alice") {
		t.Errorf("--set did not reach the recipe (exit %d):\n%s", code, stdout)
	}
}

func TestPlanShippedRecipes(t *testing.T) {
	t.Setenv("KRGIMAGE_MIRROR", "http://mirror.example/debian")
	for _, name := range []string{"", "kerrighed-lenny", "../../recipes/kerrighed-lenny.yaml"} {
		t.Run(name, func(t *testing.T) {
			args := []string{"plan"}
			if name != "" {
				args = append(args, name)
			}
			code, stdout, stderr := execute(t, args...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, want := range []string{"mirror   http://mirror.example/debian (from KRGIMAGE_MIRROR)", " 1. bootstrap ", " debootstrap --arch=amd64 "} {
				if !strings.Contains(stdout, want) {
					t.Errorf("plan lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
	code, stdout, _ := execute(t, "build", "--dry-run", "--mirror", "http://flag.example/debian", "-o", "/srv/x")
	if code != ExitOK || !strings.Contains(stdout, "from --mirror") || !strings.Contains(stdout, "/srv/x/rootfs") {
		t.Errorf("build --dry-run (exit %d):\n%s", code, stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := [][]string{
		{"frobnicate"},
		{"build", "--no-such-flag"},
		{"build", "a.yaml", "b.yaml"},
		{"version", "extra"},
		{"--log-format", "xml", "version"},
		{"validate", "--set", "novalue", "bookworm-nfsroot"},
	}
	for _, args := range tests {
		code, _, stderr := execute(t, args...)
		if code != ExitUsage {
			t.Errorf("%q: exit = %d, want %d (%s)", args, code, ExitUsage, stderr)
		}
		if strings.Count(stderr, "krgimage:") != 1 {
			t.Errorf("%q: the error should be printed once:\n%s", args, stderr)
		}
	}
}

func TestMissingRecipe(t *testing.T) {
	code, _, stderr := execute(t, "validate", "/nonexistent/recipe.yaml")
	if code != ExitFailure || !strings.Contains(stderr, "no such file") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := execute(t, "version")
	if code != ExitOK || !strings.HasPrefix(stdout, "krgimage ") {
		t.Errorf("exit %d: %q", code, stdout)
	}
}

func TestHelp(t *testing.T) {
	code, stdout, _ := execute(t, "build", "--help")
	if code != ExitOK || !strings.Contains(stdout, "--dry-run") || !strings.Contains(stdout, "KRGIMAGE_MIRROR") {
		t.Errorf("build --help (exit %d):\n%s", code, stdout)
	}
	code, stdout, _ = execute(t, "completion", "bash")
	if code != ExitOK || !strings.Contains(stdout, "krgimage") {
		t.Errorf("completion bash: exit %d", code)
	}
}

func TestBuildNotRootOrInvalid(t *testing.T) {
	// A build whose recipe is invalid fails before touching anything.
	p := writeRecipe(t, "suite: bookworm\nvariant: nope\n")
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := execute(t, "build", p, "-o", out, "--mirror", "http://mirror.example/debian")
	if code != ExitFailure || !strings.Contains(stderr, ":2:10: variant") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("an invalid build created its output")
	}
}

func TestInterruptedExitCode(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errb bytes.Buffer
	p := writeRecipe(t, "suite: bookworm\n")
	code := Execute(ctx, []string{"build", p, "-o", filepath.Join(t.TempDir(), "o"), "--mirror", "http://127.0.0.1:1/debian"}, &out, &errb)
	if code != ExitInterrupted {
		t.Errorf("exit = %d, want %d: %s", code, ExitInterrupted, errb.String())
	}
}

func fakeImage(t *testing.T, version string) string {
	t.Helper()
	image := t.TempDir()
	os.MkdirAll(filepath.Join(image, "boot"), 0o755)
	os.WriteFile(filepath.Join(image, "boot", "vmlinuz-"+version), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(image, "boot", "initrd.img-"+version), []byte("initrd"), 0o644)
	return image
}

func TestNetboot(t *testing.T) {
	if _, err := os.Stat("/usr/lib/PXELINUX/pxelinux.0"); err != nil {
		testenv.Missing(t, "pxelinux not installed (make deps installs it)")
	}
	image := fakeImage(t, "6.1.0-50-amd64")
	out := filepath.Join(t.TempDir(), "server")
	code, _, stderr := execute(t, "netboot", "bookworm-nfsroot", "--image", image, "--out", out)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, p := range []string{"etc/dhcp/dhcpd.conf", "etc/default/tftpd-hpa", "etc/exports.d/krgimage.exports",
		"srv/tftp/pxelinux.0", "srv/tftp/ldlinux.c32", "srv/tftp/pxelinux.cfg/default", "srv/tftp/boot/vmlinuz-6.1.0-50-amd64"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Error(err)
		}
	}
	server := t.TempDir()
	code, stdout, _ := execute(t, "netboot", "bookworm-nfsroot", "--image", image, "--diff", server)
	if code != ExitOK || !strings.Contains(stdout, "+++ /etc/dhcp/dhcpd.conf (krgimage)") {
		t.Errorf("--diff (exit %d):\n%s", code, stdout)
	}
	code, stdout, _ = execute(t, "netboot", "bookworm-nfsroot", "--image", image, "--install", server)
	if code != ExitOK || !strings.Contains(stdout, "exportfs -avr") || !strings.Contains(stdout, "systemctl restart isc-dhcp-server") {
		t.Errorf("--install (exit %d):\n%s", code, stdout)
	}
	if _, err := os.Stat(filepath.Join(server, "srv/tftp/pxelinux.cfg/default")); err != nil {
		t.Error(err)
	}
	if code, _, _ := execute(t, "netboot", "bookworm-nfsroot", "--image", image); code != ExitUsage {
		t.Errorf("no mode: exit %d, want %d", code, ExitUsage)
	}
}

// An inventory mistake stops netboot before anything is written.
func TestNetbootBadInventory(t *testing.T) {
	b, err := os.ReadFile("../../recipes/bookworm-nfsroot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), "first_ip: 192.168.1.101", "first_ip: 192.168.1.230", 1)
	p := writeRecipe(t, bad)
	out := filepath.Join(t.TempDir(), "server")
	code, _, stderr := execute(t, "netboot", p, "--image", fakeImage(t, "6.1.0-50-amd64"), "--out", out)
	if code != ExitFailure || !strings.Contains(stderr, "inside the dynamic range") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("files were written despite the error")
	}
}

// Before the image is built, netboot writes the server's part, as the
// seed sets up DHCP, TFTP and NFS first, and lists what the image will
// add; a root given by hand that is not there is still an error.
func TestNetbootBeforeTheImage(t *testing.T) {
	if _, err := os.Stat("/usr/lib/PXELINUX/pxelinux.0"); err != nil {
		testenv.Missing(t, "pxelinux not installed (make deps installs it)")
	}
	recipe, err := filepath.Abs("../../recipes/bookworm-nfsroot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	out := filepath.Join(t.TempDir(), "server")
	code, stdout, stderr := execute(t, "netboot", recipe, "--kernel", "6.1.0-50-amd64", "--out", out)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, p := range []string{"etc/dhcp/dhcpd.conf", "etc/default/tftpd-hpa", "etc/exports.d/krgimage.exports",
		"srv/tftp/pxelinux.0", "srv/tftp/ldlinux.c32", "srv/tftp/pxelinux.cfg/default"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Error(err)
		}
	}
	for _, want := range []string{"still to come: /srv/tftp/boot/vmlinuz-6.1.0-50-amd64 (the image's /boot/vmlinuz-6.1.0-50-amd64)",
		"still to come: /srv/tftp/boot/initrd.img-6.1.0-50-amd64"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "srv/tftp/boot")); !os.IsNotExist(err) {
		t.Error("boot/ exists before the image gave it anything")
	}
	code, _, stderr = execute(t, "netboot", recipe, "--image", filepath.Join(t.TempDir(), "typo"), "--out", out)
	if code != ExitFailure || !strings.Contains(stderr, "image root") {
		t.Errorf("a missing --image: exit %d: %s", code, stderr)
	}
}
