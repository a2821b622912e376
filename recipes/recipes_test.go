package recipes

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/golden"
)

func noEnv(string) (string, bool) { return "", false }

func parse(t *testing.T, src string, vars map[string]string) (*Recipe, error) {
	t.Helper()
	return Parse([]byte(src), "test.yaml", Options{Vars: vars, LookupEnv: noEnv})
}

const cluster = `
cluster:
  domain: c.home
  server: {name: srv, ip: 10.0.0.1}
  subnet: 10.0.0.0/24
  dynamic_range: {start: 10.0.0.200, end: 10.0.0.250}
  nodes:
    - {name: n1, ip: 10.0.0.11, mac: "52:54:00:00:00:01"}
`

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		kind error
		// at is "line:col: path" as printed after the file name.
		at   string
		text string
	}{
		{"yaml syntax", "suite: [lenny\n", ErrSyntax, "1:", "not found"},
		{"two documents", "suite: lenny\n---\nsuite: sid\n", ErrSyntax, "2:1", "single YAML document"},
		{"duplicate key", "suite: lenny\nsuite: sid\n", ErrSyntax, "2:1", "already defined"},
		{"unknown top-level key", "suite: lenny\nsuit: sid\n", ErrUnknownKey, "2:1: suit", `did you mean "suite"`},
		{"unknown nested key", "nfsroot:\n  path: /x\n  mod: ro\n", ErrUnknownKey, "3:3: nfsroot.mod", "allowed: mode, options"},
		{"unknown step", "provision:\n  - mtba\n", ErrUnknownKey, "2:5: provision[0]", `did you mean "mtab"`},
		{"step with two keys", "provision:\n  - {mtab: {}, rcs: {}}\n", ErrType, "2:6: provision[0]", "exactly one key"},
		{"list for string", "suite: [a, b]\n", ErrType, "1:8: suite", "expected a string, got a list"},
		{"string for list", "components: main\n", ErrType, "1:13: components", "expected a list"},
		{"string for int", "nfsroot: {path: /x, version: three}\n", ErrType, "1:30: nfsroot.version", "expected an integer"},
		{"int for bool", "insecure: 1\n", ErrType, "1:11: insecure", "expected true or false"},
		{"yes is not a bool", "insecure: yes\n", ErrType, "1:11: insecure", `got "yes"`},
		{"mapping for scalar", "suite: {a: b}\n", ErrType, "1:9: suite", "got a mapping"},
		{"bad enum", "variant: tiny\n", ErrInvalid, "1:10: variant", "allowed: important, minbase, buildd"},
		{"bad int enum", "nfsroot: {path: /x, version: 2}\n", ErrInvalid, "1:30: nfsroot.version", "allowed: 3, 4"},
		{"bad ip", cluster + "  gateway: 10.0.0.300\n", ErrInvalid, "9:12: cluster.gateway", "IPv4 address"},
		{"ipv6 refused", cluster + "  gateway: fe80::1\n", ErrInvalid, "9:12: cluster.gateway", "IPv4 address"},
		{"bad mac", strings.Replace(cluster, `"52:54:00:00:00:01"`, "52:54:00:zz:00:01", 1), ErrInvalid, "8:38: cluster.nodes[0].mac", "MAC address"},
		{"bad cidr", strings.Replace(cluster, "10.0.0.0/24", "10.0.0.0/33", 1), ErrInvalid, "5:11: cluster.subnet", "CIDR"},
		{"host bits in cidr", strings.Replace(cluster, "10.0.0.0/24", "10.0.0.5/24", 1), ErrInvalid, "5:11: cluster.subnet", "did you mean 10.0.0.0/24"},
		{"ip outside subnet", strings.Replace(cluster, "10.0.0.11", "10.0.1.11", 1), ErrInvalid, "8:22: cluster.nodes[0].ip", "outside the subnet 10.0.0.0/24"},
		{"ip is broadcast", strings.Replace(cluster, "10.0.0.11", "10.0.0.255", 1), ErrInvalid, "8:22: cluster.nodes[0].ip", "broadcast"},
		{"ip in dynamic range", strings.Replace(cluster, "10.0.0.11", "10.0.0.210", 1), ErrConflict, "8:22: cluster.nodes[0].ip", "inside the dynamic range"},
		{"server outside subnet", strings.Replace(cluster, "ip: 10.0.0.1}", "ip: 192.168.0.1}", 1), ErrInvalid, "4:27: cluster.server.ip", "outside the subnet"},
		{"duplicate node name", cluster + "    - {name: n1, ip: 10.0.0.12}\n", ErrDuplicate, "9:14: cluster.nodes[1].name", `"n1" is already used`},
		{"node named like server", cluster + "    - {name: srv, ip: 10.0.0.12}\n", ErrDuplicate, "9:14: cluster.nodes[1].name", "the server"},
		{"duplicate node ip", cluster + "    - {name: n2, ip: 10.0.0.11}\n", ErrDuplicate, "9:22: cluster.nodes[1].ip", "already used by node n1"},
		{"node ip is the server's", cluster + "    - {name: n2, ip: 10.0.0.1}\n", ErrDuplicate, "9:22: cluster.nodes[1].ip", "the server"},
		{"duplicate node mac", cluster + "    - {name: n2, ip: 10.0.0.12, mac: \"52:54:00:00:00:01\"}\n", ErrDuplicate, "9:38: cluster.nodes[1].mac", "already used by node n1"},
		{"range overlaps node", cluster + "  node_ranges:\n    - {prefix: n, count: 3, first_ip: 10.0.0.10, start: 0}\n", ErrDuplicate, "10:16: cluster.node_ranges[0].prefix", `"n1" is already used`},
		{"range leaves subnet", cluster + "  node_ranges:\n    - {prefix: x, count: 200, first_ip: 10.0.0.100}\n", ErrInvalid, "10:41: cluster.node_ranges[0].first_ip", "outside the subnet"},
		{"bad hostname", strings.Replace(cluster, "name: n1", "name: n_1", 1), ErrInvalid, "8:14: cluster.nodes[0].name", "host name label"},
		{"relative path", "nfsroot: {path: NFSROOT/kerrighed}\n", ErrInvalid, "1:17: nfsroot.path", "absolute path"},
		{"dotdot path", "outputs: {rootfs: /srv/../etc}\n", ErrInvalid, "1:19: outputs.rootfs", "without .."},
		{"missing nfs path", "cluster: {server: {ip: 10.0.0.1}, subnet: 10.0.0.0/24}\nnfsroot: {mode: rw}\n", ErrMissing, "2:11: nfsroot.path", "exported path"},
		{"missing nfs server", "nfsroot: {path: /x}\n", ErrMissing, "1:11: nfsroot.server", "server address"},
		{"kernel package and source", "kernel: {package: linux-image-amd64, source: /k.tgz}\n", ErrConflict, "1:46: kernel.source", "not both"},
		{"kernel url without sha", "kernel: {source: http://x/k.tgz}\n", ErrMissing, "1:10: kernel.sha256", "sha256"},
		{"build option with package", "kernel: {package: linux-image-amd64, jobs: 4}\n", ErrConflict, "1:44: kernel.jobs", "built from source"},
		{"bad sha256", "kernel: {source: http://x/k.tgz, sha256: abc}\n", ErrInvalid, "1:42: kernel.sha256", "hexadecimal"},
		{"bad duration", "nfsroot: {path: /x, server: 10.0.0.1}\nboot_test: {timeout: soon}\n", ErrInvalid, "2:22: boot_test.timeout", "duration"},
		{"undefined variable", "suite: ${SUITE}\n", ErrUndefinedVar, "1:8: suite", "--set SUITE=VALUE"},
		{"bad variable syntax", "suite: ${SUITE\n", ErrSyntax, "1:8: suite", "unterminated"},
		{"plain text password", "provision:\n  - root-password: {hash: hunter2}\n", ErrInvalid, "2:27: provision[0].root-password.hash", "plain-text passwords are refused"},
		{"two password sources", "provision:\n  - root-password: {hash: '$6$ab$cd', lock: true}\n", ErrConflict, "2:21: provision[0].root-password", "exactly one"},
		{"duplicate uid", "provision:\n  - users: [{name: a, uid: 1000}, {name: b, uid: 1000}]\n", ErrDuplicate, "2:50: provision[0].users[1].uid", "uid 1000"},
		{"bad user name", "provision:\n  - users: [{name: Bob}]\n", ErrInvalid, "2:20: provision[0].users[0].name", "user or group name"},
		{"bad package", "provision:\n  - packages: [Foo_Bar]\n", ErrInvalid, "2:16: provision[0].packages[0]", "Debian package name"},
		{"bad mode", "provision:\n  - write: {path: /etc/x, mode: '0999'}\n", ErrInvalid, "2:33: provision[0].write.mode", "octal"},
		{"hosts without cluster", "provision:\n  - hosts\n", ErrMissing, "2:5: provision[0]", "cluster"},
		{"run needs one source", "provision:\n  - run: {}\n", ErrConflict, "2:10: provision[0].run", "script and file"},
		{"nfsbooted package after lenny", "suite: bookworm\nprovision:\n  - nfsbooted: {method: package}\n", ErrConflict, "3:25: provision[0].nfsbooted.method", "does not exist after lenny"},
		{"writable on rw root", "nfsroot: {path: /x, server: 10.0.0.1, mode: rw, writable: [{path: /var}]}\n", ErrConflict, "1:59: nfsroot.writable", "read-only root"},
		{"insecure with keyring", "insecure: true\nkeyring: /k.gpg\n", ErrConflict, "1:11: insecure", "contradict"},
		{"include and exclude", "bootstrap: {include: [vim], exclude: [vim]}\n", ErrConflict, "1:39: bootstrap.exclude[0]", "both included and excluded"},
		{"kernel argument with space", "cluster: {server: {ip: 10.0.0.1}, subnet: 10.0.0.0/24}\nnfsroot: {path: /x}\nnetboot: {pxelinux: {append: [\"a b\"]}}\n", ErrInvalid, "3:31: netboot.pxelinux.append[0]", "one word"},
		{"netboot without cluster", "netboot: {}\n", ErrMissing, "1:10: netboot", "cluster"},
		{"unknown DHCP server", cluster + "nfsroot: {path: /srv/n}\nnetboot: {dhcp: {server: udhcpd}}\n", ErrInvalid, "10:26: netboot.dhcp.server", "isc, kea, dnsmasq"},
		{"HTTP port too high", cluster + "nfsroot: {path: /srv/n}\nnetboot: {http: {port: 70000}}\n", ErrInvalid, "10:24: netboot.http.port", "1 to 65535"},
		{"dhcp3 flavor for Kea", cluster + "nfsroot: {path: /srv/n}\nnetboot: {dhcp: {server: kea, flavor: dhcp3}}\n", ErrConflict, "10:39: netboot.dhcp.flavor", "ISC dhcpd's"},
		{"too many boot-test nodes", "nfsroot: {path: /x, server: 10.0.0.1}\nboot_test: {nodes: 2}\n", ErrConflict, "2:20: boot_test.nodes", "netns"},
		{"alias to nowhere", "suite: *x\n", ErrSyntax, "1:8: suite", "no earlier anchor"},
		{"snapshot as bzip2", "outputs: {snapshot: {path: out/n.tar.bz2}}\n", ErrInvalid, "1:28: outputs.snapshot.path", "bzip2"},
		{"snapshot name contradicts", "outputs: {snapshot: {path: out/n.TAR.GZ, compression: xz}}\n", ErrConflict, "1:55: outputs.snapshot.compression", "contradicts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.src, nil)
			if err == nil {
				t.Fatalf("Parse() = nil, want %v", tt.kind)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("Parse() = %v\nwant kind %v", err, tt.kind)
			}
			var found bool
			for _, e := range err.(Errors) {
				if strings.HasPrefix(e.Error(), "test.yaml:"+tt.at) && strings.Contains(e.Error(), tt.text) {
					found = true
				}
			}
			if !found {
				t.Errorf("Parse() = %v\nwant an error at test.yaml:%s mentioning %q", err, tt.at, tt.text)
			}
		})
	}
}

// A recipe with several mistakes reports all of them, in file order.
func TestAllErrorsAtOnce(t *testing.T) {
	src := `suite: bookworm
architecure: amd64
variant: tiny
cluster:
  subnet: 10.0.0.0/24
  server: {ip: 10.0.0.1}
  nodes:
    - {name: n1, ip: 10.0.1.5}
    - {name: n1, ip: 300.0.0.1}
nfsroot:
  path: relative
`
	_, err := parse(t, src, nil)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse() = %v, want Errors", err)
	}
	want := []string{
		"test.yaml:2:1: architecure: unknown key",
		"test.yaml:3:10: variant: invalid value",
		"test.yaml:8:22: cluster.nodes[0].ip: node n1's address 10.0.1.5 is outside",
		"test.yaml:9:14: cluster.nodes[1].name: node name \"n1\" is already used",
		"test.yaml:9:22: cluster.nodes[1].ip: invalid value \"300.0.0.1\"",
		"test.yaml:11:9: nfsroot.path: invalid value \"relative\"",
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want prefix %q", i, errs[i], w)
		}
	}
}

func TestVariables(t *testing.T) {
	tests := []struct {
		name string
		src  string
		vars map[string]string
		env  map[string]string
		want string
	}{
		{"set", "suite: ${S}\n", map[string]string{"S": "trixie"}, nil, "trixie"},
		{"env", "suite: ${S}\n", nil, map[string]string{"S": "sid"}, "sid"},
		{"set beats env", "suite: ${S}\n", map[string]string{"S": "trixie"}, map[string]string{"S": "sid"}, "trixie"},
		{"default", "suite: ${S:-bullseye}\n", nil, nil, "bullseye"},
		{"empty uses default", "suite: ${S:-bullseye}\n", nil, map[string]string{"S": ""}, "bullseye"},
		{"dollar escape", "description: cost $$5 ${X:-x}\nsuite: a\n", nil, nil, "a"},
		{"inside a string", "suite: ${A}${B:-y}\n", map[string]string{"A": "x"}, nil, "xy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.src), "test.yaml", Options{Vars: tt.vars, LookupEnv: func(k string) (string, bool) {
				v, ok := tt.env[k]
				return v, ok
			}})
			if err != nil {
				t.Fatal(err)
			}
			if r.Suite != tt.want {
				t.Errorf("suite = %q, want %q", r.Suite, tt.want)
			}
		})
	}
	r, err := parse(t, "description: cost $$5 $HOME\nprovision:\n  - run: {script: 'echo ${HOME}'}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Description != "cost $5 $HOME" {
		t.Errorf("description = %q", r.Description)
	}
	if r, err := parse(t, "nfsroot: {path: /x, server: 10.0.0.1, version: \"${V}\"}\n", map[string]string{"V": "4"}); err != nil || r.NFSRoot.Version != 4 {
		t.Errorf("integer from a variable: %v, %v", r, err)
	}
}

func TestDefaults(t *testing.T) {
	r, err := parse(t, "{}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Suite != "lenny" || r.Architecture != "amd64" || r.Name != "test" || r.Variant != "important" {
		t.Errorf("defaults: suite %q arch %q name %q variant %q", r.Suite, r.Architecture, r.Name, r.Variant)
	}
	r, err = parse(t, "suite: bookworm\n"+cluster+"nfsroot: {path: /srv/nfsroot}\nnetboot: {}\nprovision: [mtab, {users: [{name: krg}]}]\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.NFSRoot.Server.String(); got != "10.0.0.1" {
		t.Errorf("nfsroot.server defaults to the cluster server, got %s", got)
	}
	if len(r.NFSRoot.Writable) != 3 || r.NFSRoot.Writable[0].Source != "/srv/nfsroot/var" {
		t.Errorf("writable defaults: %+v", r.NFSRoot.Writable)
	}
	if r.NFSRoot.Tmpfs != nil {
		t.Errorf("a systemd suite gets no /var/run tmpfs: %v", r.NFSRoot.Tmpfs)
	}
	if r.Netboot.DHCP.Flavor != "isc" || r.Netboot.TFTP.Form != "modern" || r.Netboot.Exports.Clients != "10.0.0.0/24" {
		t.Errorf("netboot defaults: %+v", r.Netboot)
	}
}

func TestNodes(t *testing.T) {
	r, err := parse(t, cluster+"  node_ranges:\n    - {prefix: ssi, count: 3, first_ip: 10.0.0.101, first_mac: '52:54:00:0b:0c:fe', width: 2}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range r.Nodes() {
		got = append(got, n.Name+" "+n.IP.String()+" "+n.MAC.String())
	}
	want := []string{
		"n1 10.0.0.11 52:54:00:00:00:01",
		"ssi01 10.0.0.101 52:54:00:0b:0c:fe",
		"ssi02 10.0.0.102 52:54:00:0b:0c:ff",
		"ssi03 10.0.0.103 52:54:00:0b:0d:00",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Nodes() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const hash = "$6$salt$abcdefghijklmnop"
	r, err := parse(t, "provision:\n  - root-password: {hash: '"+hash+"'}\n  - users: [{name: krg, password_hash: '"+hash+"'}]\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("abcdefghijklmnop")) {
		t.Errorf("Marshal() leaks the hash:\n%s", out)
	}
}

// TestGolden checks the normalized form of each shipped recipe and of the
// test recipes in testdata/.
func TestGolden(t *testing.T) {
	env := map[string]string{}
	files, _ := filepath.Glob("*.yaml")
	more, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range append(files, more...) {
		t.Run(f, func(t *testing.T) {
			r, err := Load(f, Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
			if err != nil {
				t.Fatal(err)
			}
			got, err := Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "golden", filepath.Base(f)), got)
		})
	}
}

func TestShipped(t *testing.T) {
	names := Shipped()
	if len(names) < 2 {
		t.Fatalf("Shipped() = %v", names)
	}
	for _, n := range names {
		if _, err := LoadShipped(n, Options{LookupEnv: noEnv}); err != nil {
			t.Errorf("shipped recipe %s: %v", n, err)
		}
	}
	if _, err := LoadShipped(DefaultRecipe, Options{LookupEnv: noEnv}); err != nil {
		t.Errorf("default recipe: %v", err)
	}
	if _, err := LoadShipped("nope", Options{}); err == nil {
		t.Error("LoadShipped(nope) = nil error")
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range Shipped() {
		b, _ := shipped.ReadFile(n + ".yaml")
		f.Add(b)
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("provision: [mtab, {users: [{name: a}]}]\n"))
	f.Add([]byte(cluster))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data, "fuzz.yaml", Options{LookupEnv: noEnv, Vars: map[string]string{"X": "1"}})
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse() returned %T %v, want Errors", err, err)
			}
			for _, e := range errs {
				if e.Kind == nil {
					t.Fatalf("error without a kind: %v", e)
				}
			}
			return
		}
		if _, err := Marshal(r); err != nil {
			t.Fatalf("Marshal() of a valid recipe: %v", err)
		}
	})
}
