package netboot

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/confread"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/recipes/recipestest"
)

// FuzzServerFiles: for every recipe that validates, dhcpd.conf, Kea's
// and dnsmasq's configurations (whichever server the recipe picks: the
// others get the same values), exports, the tftpd-hpa defaults and
// pxelinux.cfg and GRUB's grub.cfg read back (as dhcpd, Kea, dnsmasq, exportfs, sh and
// pxelinux read them) to exactly the directives the recipe asks for, and
// no other.
func FuzzServerFiles(f *testing.F) {
	for _, v := range recipestest.Seeds {
		f.Add(v.Name, v.Path, v.Option, v.Label, v.Arg, v.Clients, v.TFTPOptions, v.ExportOptions)
	}
	f.Fuzz(func(t *testing.T, name, path, option, label, arg, clients, tftpOptions, exportOptions string) {
		r, err := recipestest.Recipe(recipestest.Values{Name: name, Path: path, Option: option, Label: label, Arg: arg,
			Clients: clients, TFTPOptions: tftpOptions, MountOptions: "rw", ExportOptions: exportOptions})
		if err != nil {
			return
		}
		for file, check := range map[string]func(*recipes.Recipe) error{
			"dhcpd.conf": checkDHCP, "kea-dhcp4.conf": checkKea, "dnsmasq": checkDnsmasq,
			"exports": checkExports, "tftpd-hpa": checkTFTP, "pxelinux.cfg": checkPXE, "grub.cfg": checkGrub,
		} {
			if err := check(r); err != nil {
				t.Fatalf("%s: %v\nrecipe values: %q", file, err, []string{name, path, option, label, arg, clients, tftpOptions, exportOptions})
			}
		}
	})
}

func checkDHCP(r *recipes.Recipe) error {
	stmts, err := confread.DHCP(DHCPConf(r))
	if err != nil {
		return err
	}
	var heads []string
	for _, s := range stmts {
		heads = append(heads, s.Head())
	}
	want := []string{"option dhcp-max-message-size 2048", "use-host-decl-names on", "deny bootp",
		`option domain-name "c.home"`, "subnet 10.0.0.0 netmask 255.255.255.0", "group"}
	if !slices.Equal(heads, want) {
		return fmt.Errorf("statements %q, want %q", heads, want)
	}
	var group []string
	for _, s := range stmts[len(stmts)-1].Block {
		group = append(group, s.Head())
	}
	wantGroup := []string{`filename "pxelinux.0"`, "next-server 10.0.0.1", `server-name "srv"`,
		fmt.Sprintf("option root-path %q", "10.0.0.1:"+r.NFSRoot.Path), "host n1"}
	if !slices.Equal(group, wantGroup) {
		return fmt.Errorf("group statements %q, want %q", group, wantGroup)
	}
	return nil
}

func checkExports(r *recipes.Recipe) error {
	es, err := confread.Exports(Exports(r))
	if err != nil {
		return err
	}
	e := r.Netboot.Exports
	// The writable directories get the root's options, read-write.
	rw := []string{"rw"}
	for _, o := range e.Options {
		if o != "ro" && o != "rw" {
			rw = append(rw, o)
		}
	}
	want := []confread.Export{
		{Path: r.NFSRoot.Path, Clients: []confread.ExportClient{{Host: e.Clients, Options: e.Options}}},
		{Path: r.NFSRoot.Path + "/var", Clients: []confread.ExportClient{{Host: e.Clients, Options: rw}}},
	}
	if fmt.Sprint(es) != fmt.Sprint(want) {
		return fmt.Errorf("exports %+v, want %+v", es, want)
	}
	return nil
}

func checkTFTP(r *recipes.Recipe) error {
	as, err := confread.Shell(TFTPDefaults(r))
	if err != nil {
		return err
	}
	t := r.Netboot.TFTP
	want := []confread.Assign{{Name: "TFTP_USERNAME", Value: t.Username}, {Name: "TFTP_DIRECTORY", Value: t.Root},
		{Name: "TFTP_ADDRESS", Value: t.Address}, {Name: "TFTP_OPTIONS", Value: t.Options}}
	if !slices.Equal(as, want) {
		return fmt.Errorf("assignments %+v, want %+v", as, want)
	}
	return nil
}

func checkPXE(r *recipes.Recipe) error {
	args := KernelArgs(r, nil)
	ds, err := confread.Syslinux(PXEConfig(r, r.Netboot.PXE.Label, Boot{Kernel: "vmlinuz", Initrd: "initrd.img"}, args, ""))
	if err != nil {
		return err
	}
	want := []confread.Directive{{Key: "SERIAL", Args: "0 9600"}, {Key: "DEFAULT", Args: r.Netboot.PXE.Label},
		{Key: "LABEL", Args: r.Netboot.PXE.Label}, {Key: "KERNEL", Args: "vmlinuz"},
		{Key: "APPEND", Args: "initrd=initrd.img " + strings.Join(args, " ")}}
	if !slices.Equal(ds, want) {
		return fmt.Errorf("directives %+v, want %+v", ds, want)
	}
	return nil
}

// checkGrub reads back both GRUB configurations: the TFTP one, which
// picks a node by its address, and the HTTP boot image's, which asks
// DHCP for the node's name first.
func checkGrub(r *recipes.Recipe) error {
	boot := Boot{Kernel: "boot/vmlinuz", Initrd: "boot/initrd.img"}
	entries := []Entry{{Label: r.Netboot.PXE.Label, Boot: boot, Args: KernelArgs(r, nil)}}
	for _, n := range r.Nodes() {
		if len(n.Append) > 0 {
			entries = append(entries, Entry{Label: n.Name, Node: n.Name, IP: n.IP, Boot: boot, Args: KernelArgs(r, n.Append)})
		}
	}
	byIP := func(e Entry) string { return e.IP.String() }
	if err := checkGrubText(r, GrubConfig(r, entries), entries, nil, "$net_default_ip", byIP); err != nil {
		return err
	}
	prelude := [][]string{{"net_bootp"}, {"net_get_dhcp_option", "krgimage_host", "efinet0:dhcp", "12", "string"}}
	if err := checkGrubText(r, HTTPBootGrubConfig(r, entries), entries, prelude, "$krgimage_host", func(e Entry) string { return e.Node }); err != nil {
		return fmt.Errorf("HTTP boot image: %w", err)
	}
	return nil
}

func checkGrubText(r *recipes.Recipe, text string, entries []Entry, prelude [][]string, variable string, value func(Entry) string) error {
	got, err := confread.GrubWords(text, strings.TrimPrefix(variable, "$"))
	if err != nil {
		return err
	}
	want := [][]string{{"set", "default=0"}, {"set", fmt.Sprintf("timeout=%d", (r.Netboot.PXE.Timeout+9)/10)}}
	if len(entries) > 1 {
		want = append(want, prelude...)
	}
	for i, e := range entries[1:] {
		want = append(want, []string{"if", "[", variable, "=", value(e), "]"},
			[]string{"then", "set", fmt.Sprintf("default=%d", i+1)}, []string{"fi"})
	}
	for _, e := range entries {
		want = append(want, []string{"menuentry", e.Label, "{"}, []string{"echo", "krgimage: GRUB loading boot/vmlinuz"},
			append([]string{"linux", "/boot/vmlinuz"}, e.Args...), []string{"initrd", "/boot/initrd.img"}, []string{"}"})
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		return fmt.Errorf("GRUB commands %q, want %q", got, want)
	}
	return nil
}

// Quoting holds even where validation is bypassed: a dhcpd.conf written
// from values validation refuses still reads back, in dhcpd itself, as
// one root-path and one server name.
func TestDHCPDHostileValues(t *testing.T) {
	dhcpd, err := exec.LookPath("dhcpd")
	if err != nil {
		testenv.Missing(t, "dhcpd not installed (make deps installs isc-dhcp-server)")
	}
	r, err := recipestest.Recipe(recipestest.Seeds[0])
	if err != nil {
		t.Fatal(err)
	}
	r.NFSRoot.Path = `/srv/nfs"; next-server 6.6.6.6; filename "evil.0"; #` + "\n}\nhost x {"
	r.Name = "base\n}\nsubnet 6.6.6.0 netmask 255.255.255.0 {"
	r.Netboot.DHCP.HostnamePrefix = `n"; option routers 6.6.6.6; #`
	text := DHCPConf(r)
	conf := filepath.Join(t.TempDir(), "dhcpd.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(dhcpd, "-t", "-cf", conf).CombinedOutput(); err != nil {
		t.Fatalf("dhcpd -t refused the quoted values: %v\n%s\n%s", err, out, text)
	}
	if strings.Contains(text, "\tnext-server 6.6.6.6") || strings.Contains(text, "\noption routers 6.6.6.6") {
		t.Fatalf("a value became a directive:\n%s", text)
	}
	stmts, err := confread.DHCP(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts[len(stmts)-1].Block {
		if s.Head() == fmt.Sprintf("option root-path %q", "10.0.0.1:"+r.NFSRoot.Path) {
			return
		}
	}
	t.Fatalf("no root-path holding the whole value:\n%s", text)
}
