package netboot

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/confread"
	"github.com/krgimage/krgimage/internal/golden"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/recipes/recipestest"
)

// dhcpVariants are the DHCP servers besides ISC dhcpd's default, and
// dnsmasq as a proxy beside a site's server (no dynamic range).
var dhcpVariants = map[string]func(r *recipes.Recipe){
	"kea":           func(r *recipes.Recipe) { r.Netboot.DHCP.Server = "kea" },
	"dnsmasq":       func(r *recipes.Recipe) { r.Netboot.DHCP.Server = "dnsmasq" },
	"dnsmasq-proxy": func(r *recipes.Recipe) { r.Netboot.DHCP.Server = "dnsmasq"; r.Cluster.DynamicRange = nil },
}

// eachVariant runs f on every golden recipe with each DHCP variant; the
// lenny recipe has no dynamic range, so its dnsmasq is always a proxy.
func eachVariant(t *testing.T, f func(t *testing.T, name, v string, r *recipes.Recipe)) {
	for name := range goldenRecipes {
		for v := range dhcpVariants {
			t.Run(name+"/"+v, func(t *testing.T) {
				r := load(t, goldenRecipes[name])
				if r.Cluster.DynamicRange == nil && v == "dnsmasq" {
					return
				}
				dhcpVariants[v](r)
				f(t, name, v, r)
			})
		}
	}
}

// Each server's file, for each recipe, against its golden copy, and at
// the path and service Debian's package reads.
func TestDHCPServersGolden(t *testing.T) {
	eachVariant(t, func(t *testing.T, name, v string, r *recipes.Recipe) {
		golden.Check(t, filepath.Join("testdata", "golden", "dhcp", name+"-"+v), []byte(DHCPConf(r)))
		service, _ := DHCPService(r)
		want := map[string]string{"kea": KeaPath, "dnsmasq": DnsmasqPath}[r.Netboot.DHCP.Server]
		if DHCPPath(r) != want || !slices.Contains(services(r), "systemctl restart "+service) {
			t.Errorf("path %s, services %v", DHCPPath(r), services(r))
		}
	})
}

// kea-dhcp4 -t and dnsmasq --test accept every generated configuration.
func TestDHCPServersAccept(t *testing.T) {
	eachVariant(t, func(t *testing.T, _, _ string, r *recipes.Recipe) {
		if err := serverCheck(t, r, DHCPConf(r)); err != nil {
			t.Error(err)
		}
	})
}

// serverCheck runs the server's own configuration check on text.
func serverCheck(t *testing.T, r *recipes.Recipe, text string) error {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "dhcp.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	switch r.Netboot.DHCP.Server {
	case "kea":
		kea, err := exec.LookPath("kea-dhcp4")
		if err != nil {
			testenv.Missing(t, "kea-dhcp4 not installed (make deps installs kea-dhcp4-server)")
		}
		cmd = exec.Command(kea, "-t", conf)
	case "dnsmasq":
		dnsmasq, err := exec.LookPath("dnsmasq")
		if err != nil {
			testenv.Missing(t, "dnsmasq not installed (make deps installs dnsmasq-base)")
		}
		cmd = exec.Command(dnsmasq, "--test", "--conf-file="+conf)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s refused it: %v\n%s\n%s", cmd.Args[0], err, out, text)
	}
	return nil
}

// checkKea reads kea-dhcp4.conf back, as Kea's JSON parser does after
// its comments, into exactly the recipe's options, BIOS class and
// reservation.
func checkKea(r *recipes.Recipe) error {
	var body []string
	for _, l := range strings.Split(keaConf(r), "\n") {
		if !strings.HasPrefix(l, "#") {
			body = append(body, l)
		}
	}
	dec := json.NewDecoder(strings.NewReader(strings.Join(body, "\n")))
	dec.DisallowUnknownFields()
	var f keaFile
	if err := dec.Decode(&f); err != nil {
		return err
	}
	d := f.Dhcp4
	want := keaDhcp4{
		Interfaces:    keaInterfaces{Interfaces: []string{"*"}},
		LeaseDatabase: keaLeases{Type: "memfile", Persist: true, Name: KeaLeaseFile},
		ValidLifetime: 43200,
		OptionData:    []keaOption{{Name: "domain-name", Data: "c.home"}},
		ClientClasses: []keaClass{{Name: "pxe-bios", Test: biosTest, NextServer: "10.0.0.1", ServerHostname: "srv", BootFileName: "pxelinux.0"}},
		Subnets: []keaSubnet{{ID: 1, Subnet: "10.0.0.0/24", Pools: []keaPool{{Pool: "10.0.0.200 - 10.0.0.250"}},
			OptionData: []keaOption{{Name: "broadcast-address", Data: "10.0.0.255"}, {Name: "root-path", Data: "10.0.0.1:" + r.NFSRoot.Path, AlwaysSend: true}},
			Reservations: []keaReservation{{HWAddress: "52:54:00:00:00:01", IPAddress: "10.0.0.11", Hostname: "n1",
				OptionData: []keaOption{{Name: "host-name", Data: "n1", AlwaysSend: true}}}}}},
	}
	if fmt.Sprintf("%+v", d) != fmt.Sprintf("%+v", want) {
		return fmt.Errorf("read back\n%+v\nwant\n%+v", d, want)
	}
	return nil
}

// checkDnsmasq reads the dnsmasq file back, as dnsmasq splits it, into
// exactly the recipe's range, options, boot selection and host.
func checkDnsmasq(r *recipes.Recipe) error {
	opts, err := confread.Dnsmasq(dnsmasqConf(r))
	if err != nil {
		return err
	}
	var got []string
	for _, o := range opts {
		got = append(got, o.Name+"="+strings.Join(o.Fields, "|"))
	}
	want := []string{"port=0", "dhcp-range=10.0.0.200|10.0.0.250|255.255.255.0|12h", "dhcp-option=28|10.0.0.255",
		"dhcp-option=option:domain-name|c.home", "dhcp-option=option:root-path|10.0.0.1:" + r.NFSRoot.Path,
		"dhcp-match=set:arch|option:client-arch", "dhcp-match=set:bios|option:client-arch|0",
		"dhcp-boot=tag:bios|pxelinux.0|srv|10.0.0.1", "dhcp-boot=tag:!arch|pxelinux.0|srv|10.0.0.1",
		"dhcp-host=52:54:00:00:00:01|10.0.0.11|n1"}
	if !slices.Equal(got, want) {
		return fmt.Errorf("options\n%q\nwant\n%q", got, want)
	}
	return nil
}

// Quoting holds where validation is bypassed: values validation refuses
// still read back, in each server's own check and in ours, as one root
// path and one host name, and none becomes a directive.
func TestDHCPServersHostileValues(t *testing.T) {
	for _, server := range []string{"kea", "dnsmasq"} {
		t.Run(server, func(t *testing.T) {
			r, err := recipestest.Recipe(recipestest.Seeds[0])
			if err != nil {
				t.Fatal(err)
			}
			r.Netboot.DHCP.Server = server
			r.NFSRoot.Path = "/srv/nfs\",\"evil\"\ndhcp-boot=evil.0,6.6.6.6 # \\\"}, {\"name\": \"routers\", \"data\": \"6.6.6.6"
			r.Name = "base\ndhcp-range=6.6.6.1,6.6.6.9\n"
			text := DHCPConf(r)
			if err := serverCheck(t, r, text); err != nil {
				t.Fatal(err)
			}
			for _, evil := range []string{"\ndhcp-boot=evil", "\ndhcp-range=6.6.6", `"name": "routers", "data": "6.6.6.6"`} {
				if strings.Contains(text, evil) {
					t.Errorf("a value became a directive (%q):\n%s", evil, text)
				}
			}
			if got := rootPathOf(t, server, text); !strings.HasPrefix(got, "10.0.0.1:/srv/nfs") || !strings.HasSuffix(got, "6.6.6.6") {
				t.Errorf("the root path does not read back whole: %q", got)
			}
		})
	}
}

// rootPathOf reads the root path a generated configuration gives.
func rootPathOf(t *testing.T, server, text string) string {
	t.Helper()
	if server == "kea" {
		var f keaFile
		body := text[strings.Index(text, "{"):]
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			t.Fatal(err)
		}
		for _, o := range f.Dhcp4.Subnets[0].OptionData {
			if o.Name == "root-path" {
				return o.Data
			}
		}
		return ""
	}
	opts, err := confread.Dnsmasq(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		if o.Name == "dhcp-option" && len(o.Fields) == 2 && o.Fields[0] == "option:root-path" {
			return o.Fields[1]
		}
	}
	t.Fatalf("no single-field root path:\n%s", text)
	return ""
}
