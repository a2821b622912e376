package provision

import (
	"context"
	"fmt"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/quote"
	"github.com/krgimage/krgimage/recipes"
)

// Hosts writes /etc/hosts from the cluster inventory: localhost, the
// server and every node, each with its FQDN and short name, plus extra
// entries. /etc/hostname is emptied so that each node takes its name from
// DHCP at boot, unless hostname fixes one.
type Hosts struct {
	Extra    []HostEntry `yaml:"extra,omitempty"`
	Hostname string      `yaml:"hostname,omitempty" check:"hostname"`
}

var hostsType = typeOf(func() *Hosts { return &Hosts{} }, func(c *Hosts, img *Image) Step { return hosts{c, img} })

func (h *Hosts) Validate(v *recipes.Validator, keyPath string) {
	if v.Recipe().Cluster == nil {
		v.Errorf(keyPath, recipes.ErrMissing, "the hosts step needs a cluster: section (domain, server, nodes)")
	}
	for i, e := range h.Extra {
		p := fmt.Sprintf("%s.extra[%d]", keyPath, i)
		if !e.IP.IsValid() {
			v.Errorf(p, recipes.ErrMissing, "a hosts entry needs an ip")
		}
		if len(e.Names) == 0 {
			v.Errorf(p, recipes.ErrMissing, "a hosts entry needs names")
		}
		for j, n := range e.Names {
			if !recipes.ValidDomain(n) {
				v.Errorf(fmt.Sprintf("%s.names[%d]", p, j), recipes.ErrInvalid, "invalid host name %q", n)
			}
		}
	}
}

// HostEntry is one extra /etc/hosts line.
type HostEntry struct {
	IP    recipes.Addr `yaml:"ip"`
	Names []string     `yaml:"names" check:"domain"`
}

// HostsFile renders /etc/hosts from the cluster inventory: localhost, the
// server and every node, each with its FQDN and short name, as the seed
// lists server, ssi1..ssi4.
func HostsFile(r *recipes.Recipe, extra []HostEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# /etc/hosts: written by krgimage from the inventory of recipe %s.\n", quote.Plain(r.Name))
	line := func(ip, name string) {
		if c := r.Cluster; c != nil && c.Domain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s %s\n", ip, name, c.Domain, name)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, name)
		}
	}
	b.WriteString("127.0.0.1\tlocalhost.localdomain localhost\n")
	if c := r.Cluster; c != nil {
		if c.Server.IP.IsValid() {
			line(c.Server.IP.String(), c.Server.Name)
		}
		for _, n := range r.Nodes() {
			line(n.IP.String(), n.Name)
		}
	}
	for _, e := range extra {
		fmt.Fprintf(&b, "%s\t%s\n", e.IP, strings.Join(e.Names, " "))
	}
	b.WriteString("\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	return b.String()
}

// hosts writes /etc/hosts and /etc/hostname (Hosts).
type hosts struct {
	cfg *Hosts
	img *Image
}

func (h hosts) Describe() []string {
	out := []string{fmt.Sprintf("write /etc/hosts: localhost, the server and %d nodes", len(h.img.Recipe.Nodes()))}
	if h.cfg.Hostname != "" {
		return append(out, "write /etc/hostname: "+h.cfg.Hostname)
	}
	return append(out, "empty /etc/hostname: each node takes its name from DHCP at boot")
}

func (hosts) Check() error { return nil }

// Reads nothing beyond the recipe context, which holds the inventory.
func (hosts) Reads() ([]Input, error) { return nil, nil }

// ChangesKernel: host names are nothing a kernel package reads.
func (hosts) ChangesKernel() bool { return false }

func (h hosts) Apply(_ context.Context, s *chroot.Session) error {
	if err := s.WriteFile("/etc/hosts", []byte(HostsFile(h.img.Recipe, h.cfg.Extra)), 0o644, "root", "root"); err != nil {
		return err
	}
	name := ""
	if h.cfg.Hostname != "" {
		name = h.cfg.Hostname + "\n"
	}
	return s.WriteFile("/etc/hostname", []byte(name), 0o644, "root", "root")
}
