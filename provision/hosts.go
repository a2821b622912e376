package provision

import (
	"context"
	"fmt"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/quote"
	"github.com/krgimage/krgimage/recipes"
)

// HostsFile renders /etc/hosts from the cluster inventory: localhost, the
// server and every node, each with its FQDN and short name, as the seed
// lists server, ssi1..ssi4.
func HostsFile(r *recipes.Recipe, extra []recipes.HostEntry) string {
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

// hosts writes /etc/hosts and /etc/hostname (recipes.Hosts).
type hosts struct {
	cfg *recipes.Hosts
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
