package netboot

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/golden"

	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/recipes"
)

func TestHexName(t *testing.T) {
	for ip, want := range map[string]string{
		"10.11.12.101":    "0A0B0C65",
		"192.168.1.1":     "C0A80101",
		"0.0.0.0":         "00000000",
		"255.255.255.255": "FFFFFFFF",
		"172.16.0.10":     "AC10000A",
	} {
		if got := HexName(netip.MustParseAddr(ip)); got != want {
			t.Errorf("HexName(%s) = %s, want %s", ip, got, want)
		}
	}
	if got := MACName("52:54:00:AB:cd:01"); got != "01-52-54-00-ab-cd-01" {
		t.Errorf("MACName = %s", got)
	}
}

func load(t *testing.T, path string) *recipes.Recipe {
	t.Helper()
	r, err := recipes.Load(path, recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fakeRoots makes an image with a kernel and initramfs, and a host with
// syslinux 6's pxelinux.0 and ldlinux.c32, without the real binaries.
func fakeRoots(t *testing.T, version string) (image, host string) {
	t.Helper()
	image, host = t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(image, "boot"), 0o755)
	os.WriteFile(filepath.Join(image, "boot/vmlinuz-"+version), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(image, "boot/initrd.img-"+version), []byte("initrd"), 0o644)
	os.MkdirAll(filepath.Join(host, "usr/lib/PXELINUX"), 0o755)
	os.MkdirAll(filepath.Join(host, "usr/lib/syslinux/modules/bios"), 0o755)
	os.WriteFile(filepath.Join(host, "usr/lib/PXELINUX/pxelinux.0"), []byte("PXELINUX 6.04 loads ldlinux.c32"), 0o644)
	os.WriteFile(filepath.Join(host, "usr/lib/syslinux/modules/bios/ldlinux.c32"), []byte("ldlinux"), 0o644)
	writeFile(t, filepath.Join(host, shimPaths[0]), "shim", 0o644)
	writeFile(t, filepath.Join(host, grubNetPaths[0]), "grubnetx64", 0o644)
	writeFile(t, filepath.Join(host, grubCDPaths[0]), "gcdx64", 0o644)
	return image, host
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

var goldenRecipes = map[string]string{
	"lenny":      "../recipes/kerrighed-lenny.yaml",
	"bookworm":   "../recipes/bookworm-nfsroot.yaml",
	"everything": "../recipes/testdata/everything.yaml",
}

// Every generated text file, for each recipe, against its golden copy.
func TestGolden(t *testing.T) {
	for name, path := range goldenRecipes {
		t.Run(name, func(t *testing.T) {
			r := load(t, path)
			image, host := fakeRoots(t, "6.1.0-50-amd64")
			tree, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: "6.1.0-50-amd64", HostRoot: host})
			if err != nil {
				t.Fatal(err)
			}
			var listing bytes.Buffer
			for _, p := range tree.Paths() {
				f := tree.Files[p]
				listing.WriteString(p + "\n")
				if f.Src != "" {
					continue
				}
				golden.Check(t, filepath.Join("testdata", "golden", name, p), f.Data)
			}
			golden.Check(t, filepath.Join("testdata", "golden", name, "FILES"), listing.Bytes())
		})
	}
}

// ISC dhcpd accepts every generated dhcpd.conf.
func TestDHCPDAccepts(t *testing.T) {
	dhcpd, err := exec.LookPath("dhcpd")
	if err != nil {
		testenv.Missing(t, "dhcpd not installed (make deps installs isc-dhcp-server)")
	}
	for name, path := range goldenRecipes {
		t.Run(name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "dhcpd.conf")
			os.WriteFile(conf, []byte(DHCPConf(load(t, path))), 0o644)
			out, err := exec.Command(dhcpd, "-t", "-cf", conf).CombinedOutput()
			if err != nil {
				t.Errorf("dhcpd -t refused %s: %v\n%s", name, err, out)
			}
		})
	}
}

func TestSeedDetails(t *testing.T) {
	r := load(t, "../recipes/kerrighed-lenny.yaml")
	image, host := fakeRoots(t, "2.6.30-krg3.0.0")
	// Lenny's syslinux 3 has its pxelinux.0 in /usr/lib/syslinux and no
	// ldlinux.c32.
	os.RemoveAll(filepath.Join(host, "usr/lib"))
	os.MkdirAll(filepath.Join(host, "usr/lib/syslinux"), 0o755)
	os.WriteFile(filepath.Join(host, "usr/lib/syslinux/pxelinux.0"), []byte("PXELINUX 3.71"), 0o644)
	tree, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: "2.6.30-krg3.0.0", HostRoot: host})
	if err != nil {
		t.Fatal(err)
	}
	def := string(tree.Files["srv/tftp/pxelinux.cfg/default"].Data)
	for _, want := range []string{"DEFAULT kerrighed\nLABEL kerrighed\n", "    kernel boot/vmlinuz-2.6.30-krg3.0.0\n",
		"append initrd=boot/initrd.img-2.6.30-krg3.0.0 ip=dhcp root=/dev/nfs nfsroot=10.11.12.1:/NFSROOT/kerrighed ro session_id=1 autonodeid=1\n"} {
		if !strings.Contains(def, want) {
			t.Errorf("pxelinux.cfg/default lacks %q:\n%s", want, def)
		}
	}
	if _, ok := tree.Files["srv/tftp/ldlinux.c32"]; ok {
		t.Error("ldlinux.c32 served for syslinux 3")
	}
	for _, want := range []string{"RUN_DAEMON=\"yes\"", "OPTIONS=\"-l -s /srv/tftp\""} {
		if !strings.Contains(string(tree.Files[TFTPDefaultsPath].Data), want) {
			t.Errorf("tftpd-hpa lacks %s", want)
		}
	}
	if _, ok := tree.Files["etc/dhcp3/dhcpd.conf"]; !ok {
		t.Error("lenny's dhcp3-server path not used")
	}
	exports := string(tree.Files[ExportsPath].Data)
	for _, want := range []string{"/NFSROOT/kerrighed 10.11.12.0/24(ro,sync,no_root_squash,no_subtree_check)",
		"/NFSROOT/kerrighed/var 10.11.12.0/24(rw,sync,no_root_squash,no_subtree_check)"} {
		if !strings.Contains(exports, want) {
			t.Errorf("exports lack %q:\n%s", want, exports)
		}
	}
	// A syslinux 5+ pxelinux.0 without its ldlinux.c32 is an error.
	os.MkdirAll(filepath.Join(host, "usr/lib/PXELINUX"), 0o755)
	os.WriteFile(filepath.Join(host, "usr/lib/PXELINUX/pxelinux.0"), []byte("PXELINUX 6.04"), 0o644)
	if _, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: "2.6.30-krg3.0.0", HostRoot: host}); err == nil || !strings.Contains(err.Error(), "ldlinux.c32") {
		t.Errorf("missing ldlinux.c32: %v", err)
	}
	if _, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: "9.9", HostRoot: host}); err == nil {
		t.Error("a missing kernel was not noticed")
	}
}

func TestWriteDiffInstall(t *testing.T) {
	r := load(t, "../recipes/bookworm-nfsroot.yaml")
	image, host := fakeRoots(t, "6.1.0-50-amd64")
	tree, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: "6.1.0-50-amd64", HostRoot: host})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "server")
	if err := tree.Write(out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "srv/tftp/boot/vmlinuz-6.1.0-50-amd64")); string(b) != "kernel" {
		t.Errorf("kernel not copied: %q", b)
	}
	// A server with an old dhcpd.conf: diff shows it, install keeps it.
	server := t.TempDir()
	os.MkdirAll(filepath.Join(server, "etc/dhcp"), 0o755)
	os.WriteFile(filepath.Join(server, "etc/dhcp/dhcpd.conf"), []byte("# the admin's old config\n"), 0o644)
	var diff bytes.Buffer
	n, err := tree.Diff(server, &diff)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(tree.Files) || !strings.Contains(diff.String(), "-# the admin's old config") || !strings.Contains(diff.String(), "+use-host-decl-names on;") {
		t.Errorf("diff (%d files):\n%s", n, diff.String())
	}
	rep, err := tree.Install(t.Context(), server)
	if err != nil {
		t.Fatal(err)
	}
	backups := rep.Backups()
	if len(backups) != 1 || backups[0] != filepath.Join(server, "etc/dhcp/dhcpd.conf.krgimage-bak") {
		t.Fatalf("backups = %v", backups)
	}
	if len(rep.Installed) != len(tree.Files) || len(rep.Unchanged) != 0 {
		t.Errorf("installed %d, unchanged %d of %d files", len(rep.Installed), len(rep.Unchanged), len(tree.Files))
	}
	if b, _ := os.ReadFile(backups[0]); string(b) != "# the admin's old config\n" {
		t.Errorf("backup = %q", b)
	}
	if n, _ := tree.Diff(server, &bytes.Buffer{}); n != 0 {
		t.Errorf("after install, %d files still differ", n)
	}
}

// Diff does not read through a symlink Install would refuse: it says so,
// and shows nothing of what the link points to.
func TestDiffSymlink(t *testing.T) {
	r := load(t, "../recipes/bookworm-nfsroot.yaml")
	image, host := fakeRoots(t, "6.1.0-50-amd64")
	tree, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: "6.1.0-50-amd64", HostRoot: host})
	if err != nil {
		t.Fatal(err)
	}
	server, elsewhere := t.TempDir(), t.TempDir()
	secret := filepath.Join(elsewhere, "shadow")
	os.WriteFile(secret, []byte("root:secret-hash\n"), 0o600)
	os.MkdirAll(filepath.Join(server, "etc/dhcp"), 0o755)
	link := filepath.Join(server, "etc/dhcp/dhcpd.conf")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	var diff bytes.Buffer
	n, err := tree.Diff(server, &diff)
	if err != nil || n != len(tree.Files) {
		t.Fatalf("%d files differ (%v)", n, err)
	}
	if !strings.Contains(diff.String(), "/etc/dhcp/dhcpd.conf: "+link+" is a symlink; --install refuses") || strings.Contains(diff.String(), "secret-hash") {
		t.Errorf("diff:\n%s", diff.String())
	}
}
