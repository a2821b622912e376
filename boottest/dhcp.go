package boottest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/krgimage/krgimage/internal/netns"
	"github.com/krgimage/krgimage/internal/quote"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
)

// serverCmd is a server the boot test starts in its namespace.
type serverCmd struct {
	name string
	argv []string
}

// dhcpTool is the recipe's DHCP server program and the Debian package
// that has it.
func dhcpTool(r *recipes.Recipe) (name, pkg string) {
	switch r.Netboot.DHCP.Server {
	case "kea":
		return "kea-dhcp4", "kea-dhcp4-server"
	case "dnsmasq":
		return "dnsmasq", "dnsmasq-base"
	}
	return "dhcpd", "isc-dhcp-server"
}

// dhcpServer is the recipe's DHCP server, started in the foreground on
// the bridge with its state in work: ISC dhcpd with the build's
// dhcpd.conf, or Kea or dnsmasq with a configuration the netboot
// generator writes for the test, the same but for the lease file.
func dhcpServer(r *recipes.Recipe, ns *netns.Namespace, work, tree string) (serverCmd, error) {
	name, pkg := dhcpTool(r)
	bin, err := run.LookSbin(name)
	if err != nil {
		return serverCmd{}, fmt.Errorf("%s not found: install %s", name, pkg)
	}
	switch r.Netboot.DHCP.Server {
	case "kea":
		conf := filepath.Join(work, "kea-dhcp4.conf")
		if err := os.WriteFile(conf, []byte(netboot.KeaConfig(r, filepath.Join(work, "kea-leases4.csv"))), 0o644); err != nil {
			return serverCmd{}, err
		}
		// Kea puts its PID and lock files in /run unless told.
		env := []string{"env", "KEA_PIDFILE_DIR=" + work, "KEA_LOCKFILE_DIR=" + work}
		return serverCmd{"kea-dhcp4", ns.Exec(append(env, bin, "-c", conf)...)}, nil
	case "dnsmasq":
		conf := filepath.Join(work, "dnsmasq.conf")
		if err := os.WriteFile(conf, []byte(netboot.DHCPConf(r)), 0o644); err != nil {
			return serverCmd{}, err
		}
		return serverCmd{"dnsmasq", ns.Exec(bin, "--keep-in-foreground", "--log-facility=-", "--log-dhcp", "--user=root",
			"--conf-file="+conf, "--dhcp-leasefile="+filepath.Join(work, "dnsmasq.leases"),
			"--pid-file="+filepath.Join(work, "dnsmasq.pid"), "--interface=br0", "--bind-interfaces")}, nil
	}
	leases := filepath.Join(work, "dhcpd.leases")
	if err := os.WriteFile(leases, nil, 0o644); err != nil {
		return serverCmd{}, err
	}
	conf := filepath.Join(tree, netboot.DHCPPath(r))
	return serverCmd{"dhcpd", ns.Exec(bin, "-4", "-f", "-d", "-cf", conf, "-lf", leases, "-pf", filepath.Join(work, "dhcpd.pid"), "br0")}, nil
}

// ErrServerChoice: a DHCP server or an HTTP boot was asked for where the
// test runs no such server, or a DHCP server krgimage does not configure.
var ErrServerChoice = errors.New("invalid DHCP server choice")

// withDHCP is the recipe with the DHCP server o chose, leaving the
// caller's recipe as it was.
func withDHCP(r *recipes.Recipe, o Options) (*recipes.Recipe, error) {
	if o.DHCP == "" || o.DHCP == r.Netboot.DHCP.Server {
		return r, nil
	}
	if o.Network != "netns" {
		return nil, fmt.Errorf("%w: --dhcp %s needs --network netns (QEMU's network has a DHCP server of its own)", ErrServerChoice, o.DHCP)
	}
	switch o.DHCP {
	case "isc", "kea", "dnsmasq", "dnsmasq-proxy":
	default:
		return nil, fmt.Errorf("%w: %q (allowed: isc, kea, dnsmasq, dnsmasq-proxy)", ErrServerChoice, o.DHCP)
	}
	if o.DHCP == "isc" {
		// dhcpd reads the build's own dhcpd.conf, which a recipe for
		// another server did not write.
		return nil, fmt.Errorf("%w: the build wrote no dhcpd.conf (netboot.dhcp.server is %s)", ErrServerChoice, r.Netboot.DHCP.Server)
	}
	if o.DHCP != "dnsmasq-proxy" {
		return r.WithNetboot(func(nb *recipes.Netboot) { nb.DHCP.Server = o.DHCP }), nil
	}
	// A proxy is a dnsmasq with no addresses of its own to give.
	c := r.WithNetboot(func(nb *recipes.Netboot) { nb.DHCP.Server = "dnsmasq" })
	cl := *r.Cluster
	cl.DynamicRange = nil
	c.Cluster = &cl
	return c, nil
}

// siteServer stands for the site's own DHCP server that a dnsmasq proxy
// runs beside: another machine on the nodes' network (a namespace of its
// own, joined to the bridge by a veth pair) giving each node its address
// and name, and no boot options at all.
func siteServer(r *recipes.Recipe, ns, site *netns.Namespace, work string) (serverCmd, error) {
	c := r.Cluster
	addr, err := siteAddr(r)
	if err != nil {
		return serverCmd{}, err
	}
	for _, step := range [][]string{
		{"link", "add", "site0", "type", "veth", "peer", "name", "site1"},
		{"link", "set", "site1", "netns", site.Name},
		{"link", "set", "site0", "master", "br0"},
		{"link", "set", "site0", "up"},
	} {
		if err := ns.IP(step...); err != nil {
			return serverCmd{}, err
		}
	}
	for _, step := range [][]string{
		{"addr", "add", fmt.Sprintf("%s/%d", addr, c.Subnet.Bits()), "dev", "site1"},
		{"link", "set", "site1", "up"},
	} {
		if err := site.IP(step...); err != nil {
			return serverCmd{}, err
		}
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "# The site's DHCP server for the boot test: addresses and names only.\nport=0\ndhcp-range=%s,static,%s,12h\n", c.Subnet.Addr(), c.Subnet.Netmask())
	for _, n := range r.Nodes() {
		if len(n.MAC) > 0 {
			fmt.Fprintf(&conf, "dhcp-host=%s,%s,%s\n", n.MAC, n.IP, quote.DnsmasqField(n.Name))
		}
	}
	path := filepath.Join(work, "site-dnsmasq.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
		return serverCmd{}, err
	}
	bin, err := run.LookSbin("dnsmasq")
	if err != nil {
		return serverCmd{}, fmt.Errorf("dnsmasq not found: install dnsmasq-base")
	}
	return serverCmd{"site-dnsmasq", site.Exec(bin, "--keep-in-foreground", "--log-facility=-", "--log-dhcp", "--user=root",
		"--conf-file="+path, "--dhcp-leasefile="+filepath.Join(work, "site-dnsmasq.leases"),
		"--pid-file="+filepath.Join(work, "site-dnsmasq.pid"), "--interface=site1", "--bind-interfaces")}, nil
}

// siteAddr is an address of the subnet nobody else has: the highest below
// the broadcast address that is neither the server's nor a node's.
func siteAddr(r *recipes.Recipe) (netip.Addr, error) {
	c := r.Cluster
	taken := map[netip.Addr]bool{c.Server.IP.Addr: true, c.Broadcast.Addr: true}
	for _, n := range r.Nodes() {
		taken[n.IP] = true
	}
	for a := c.Broadcast.Addr.Prev(); c.Subnet.Contains(a) && a != c.Subnet.Addr(); a = a.Prev() {
		if !taken[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("the subnet %s has no address left for the site's DHCP server", c.Subnet)
}
