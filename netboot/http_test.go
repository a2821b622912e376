package netboot

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/confread"
	"github.com/krgimage/krgimage/internal/golden"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/recipes"
)

// With netboot.http, TFTP carries lpxelinux.0 alone of what a node loads
// by name: pxelinux.cfg points the loader at the web server for the kernel
// and initramfs, and the nginx site serves the TFTP tree.
func TestHTTPBoot(t *testing.T) {
	const version = "6.1.0-50-amd64"
	r := load(t, goldenRecipes["bookworm"])
	r.Netboot.HTTP = &recipes.HTTP{Port: 8080}
	image, host := fakeRoots(t, version)
	os.WriteFile(filepath.Join(host, "usr/lib/PXELINUX/lpxelinux.0"), []byte("LPXELINUX 6.04"), 0o644)
	tree, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: version, HostRoot: host})
	if err != nil {
		t.Fatal(err)
	}
	tftp := TFTPRoot(r)
	if src := tree.Files[path.Join(tftp, "pxelinux.0")].Src; !strings.HasSuffix(src, "lpxelinux.0") {
		t.Errorf("pxelinux.0 is %s, want lpxelinux.0", src)
	}
	ds, err := confread.Syslinux(string(tree.Files[path.Join(tftp, "pxelinux.cfg/default")].Data))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://192.168.1.1:8080/boot/"
	for _, d := range ds {
		if d.Key == "KERNEL" && d.Args != base+"vmlinuz-"+version || d.Key == "APPEND" && !strings.HasPrefix(d.Args, "initrd="+base+"initrd.img-"+version+" ") {
			t.Errorf("%s %s: not over HTTP from %s", d.Key, d.Args, base)
		}
	}
	site := tree.Files[NginxPath].Data
	golden.Check(t, filepath.Join("testdata", "golden", "http", "nginx-site"), site)
	if err := nginxCheck(t, "192.168.1.1", string(site)); err != nil {
		t.Error(err)
	}
	if s := services(r); s[len(s)-1] != "systemctl reload nginx" {
		t.Errorf("services: %v", s)
	}
	os.Remove(filepath.Join(host, "usr/lib/PXELINUX/lpxelinux.0"))
	if _, err := Generate(Options{Recipe: r, ImageRoot: image, Kernel: version, HostRoot: host}); err == nil {
		t.Error("an HTTP boot without lpxelinux.0 was generated")
	}
}

// nginxCheck runs nginx -t on site inside a minimal nginx.conf, where
// addr, the address it listens on, exists.
func nginxCheck(t *testing.T, addr, site string) error {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		testenv.Missing(t, "nginx not installed (make deps installs nginx-light)")
	}
	dir := t.TempDir()
	sitePath := filepath.Join(dir, "site")
	conf := "error_log stderr;\npid " + filepath.Join(dir, "nginx.pid") + ";\nevents {}\nhttp {\n\taccess_log off;\n\tinclude " + sitePath + ";\n}\n"
	os.WriteFile(sitePath, []byte(site), 0o644)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
	// nginx -t binds what it listens on: the server's address exists in
	// a network namespace of the test's own.
	testenv.RequireRoot(t, "a network namespace holding the server's address for nginx -t")
	script := `ip link set lo up && ip addr add "$1"/32 dev lo && exec "$2" -t -p "$3" -c "$3/nginx.conf"`
	out, err := exec.Command("unshare", "--net", "sh", "-c", script, "sh", addr, nginx, dir).CombinedOutput()
	if err != nil {
		return &nginxError{string(out) + "\n" + site}
	}
	return nil
}

type nginxError struct{ s string }

func (e *nginxError) Error() string { return "nginx -t refused the site: " + e.s }

// A root path validation refuses stays one quoted root in nginx's eyes.
func TestNginxHostileRoot(t *testing.T) {
	r := load(t, goldenRecipes["bookworm"])
	r.Netboot.HTTP = &recipes.HTTP{Port: 80}
	r.Netboot.TFTP.Root = "/srv/tftp\"; }\nserver { listen 6.6.6.6:80; root \"/\"; } #$x"
	site := NginxSite(r)
	if err := nginxCheck(t, "192.168.1.1", site); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(site, "\nserver { listen 6.6.6.6") || strings.Count(site, "\n\tlisten ") != 1 || strings.Count(site, "\n\troot \"") != 1 {
		t.Errorf("a value became a directive:\n%s", site)
	}
}
