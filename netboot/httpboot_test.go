package netboot

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"github.com/krgimage/krgimage/internal/confread"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/recipes"
)

func httpBootRecipe(t *testing.T) *recipes.Recipe {
	r := load(t, "../recipes/testdata/everything.yaml")
	return r.WithNetboot(func(nb *recipes.Netboot) { nb.HTTP = &recipes.HTTP{Port: 8080} })
}

// The HTTP boot image is a FAT filesystem holding shim where firmware
// boots a disk from, GRUB's CD image beside it, a grub.cfg that picks a
// node's own entry by the name DHCP gives it, and every entry's kernel
// and initramfs; the same inputs give the same bytes; before the image
// exists it is still to come.
func TestHTTPBootImage(t *testing.T) {
	const version = "6.1.0-50-amd64"
	r := httpBootRecipe(t)
	image, host := fakeRoots(t, version)
	writeFile(t, filepath.Join(host, lpxelinuxPaths[0]), "LPXELINUX", 0o644)
	o := Options{Recipe: r, ImageRoot: image, Kernel: version, HostRoot: host}
	tree, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	img := tree.Files[path.Join(TFTPRoot(r), HTTPBootFile)].Data
	again, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img, again.Files[path.Join(TFTPRoot(r), HTTPBootFile)].Data) {
		t.Error("the same image gave another HTTP boot image")
	}
	files := readFAT(t, img, []string{httpBootLoader, httpBootGrub, httpBootConf, "boot/vmlinuz-" + version, "boot/initrd.img-" + version})
	for p, want := range map[string]string{httpBootLoader: "shim", httpBootGrub: "gcdx64", "boot/vmlinuz-" + version: "kernel"} {
		if files[p] != want {
			t.Errorf("/%s holds %q, want %q", p, files[p], want)
		}
	}
	cmds, err := confread.GrubWords(files[httpBootConf], "krgimage_host")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range cmds {
		lines = append(lines, strings.Join(c, " "))
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"net_bootp\nnet_get_dhcp_option krgimage_host efinet0:dhcp 12 string\n",
		"if [ $krgimage_host = head ]\nthen set default=1\nfi",
		"linux /boot/vmlinuz-" + version + " ip=dhcp",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "net_default_ip") {
		t.Errorf("grub.cfg picks by net_default_ip, which GRUB in a RAM disk has not:\n%s", text)
	}

	before, err := Generate(Options{Recipe: r, HostRoot: host})
	if err != nil {
		t.Fatal(err)
	}
	if !pending(before, path.Join(TFTPRoot(r), HTTPBootFile)) {
		t.Errorf("no image, yet the HTTP boot image is not still to come: %+v", before.Pending)
	}
	os.Remove(filepath.Join(host, grubCDPaths[0]))
	if _, err := Generate(o); err == nil || !strings.Contains(err.Error(), "grub-efi-amd64-signed") {
		t.Errorf("without GRUB's CD image: %v", err)
	}
}

// readFAT reads the named files out of a FAT image.
func readFAT(t *testing.T, img []byte, names []string) map[string]string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fat.img")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, err := fat32.Read(file.New(f, true), int64(len(img)), 0, 512)
	if err != nil {
		t.Fatalf("not a FAT image: %v", err)
	}
	out := map[string]string{}
	for _, n := range names {
		r, err := fsys.OpenFile("/"+n, os.O_RDONLY)
		if err != nil {
			t.Errorf("/%s: %v", n, err)
			continue
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = string(b)
	}
	return out
}

// Each DHCP server gives HTTP boot clients the image's URL and names
// their class back, beside the PXE answers, and its own checker accepts
// the file; a proxy cannot answer them and says so.
func TestHTTPBootDHCP(t *testing.T) {
	url := "http://192.168.50.1:8080/" + HTTPBootFile
	for v, want := range map[string][]string{
		"isc":           {`substring(option vendor-class-identifier, 0, 10) = "HTTPClient"`, `option vendor-class-identifier "HTTPClient";`, `filename "` + url + `";`},
		"kea":           {`"test": "option[93].hex == 0x0010 and substring(option[60].hex, 0, 10) == 'HTTPClient'"`, `"boot-file-name": "` + url + `"`, `"name": "vendor-class-identifier"`},
		"dnsmasq":       {"dhcp-vendorclass=set:httpboot,HTTPClient\n", "dhcp-option-force=tag:httpboot,60,HTTPClient\n", "dhcp-boot=tag:httpboot," + url + "\n"},
		"dnsmasq-proxy": {"# A proxy answers PXE clients only"},
	} {
		t.Run(v, func(t *testing.T) {
			r := httpBootRecipe(t)
			if f := dhcpVariants[v]; f != nil {
				f(r)
			}
			conf := DHCPConf(r)
			for _, w := range want {
				if !strings.Contains(conf, w) {
					t.Errorf("lacks %q:\n%s", w, conf)
				}
			}
			if v != "isc" {
				if err := serverCheck(t, r, conf); err != nil {
					t.Error(err)
				}
				return
			}
			dhcpd, err := exec.LookPath("dhcpd")
			if err != nil {
				testenv.Missing(t, "dhcpd not installed (make deps installs isc-dhcp-server)")
			}
			p := filepath.Join(t.TempDir(), "dhcpd.conf")
			os.WriteFile(p, []byte(conf), 0o644)
			if out, err := exec.Command(dhcpd, "-t", "-cf", p).CombinedOutput(); err != nil {
				t.Errorf("dhcpd -t: %v\n%s", err, out)
			}
		})
	}
}
