package netboot

import (
	"fmt"
	"strings"

	"github.com/krgimage/krgimage/internal/quote"
	"github.com/krgimage/krgimage/recipes"
)

// DnsmasqProxy says whether the recipe's dnsmasq is a proxy beside the
// site's DHCP server: it has no addresses of its own to give.
func DnsmasqProxy(r *recipes.Recipe) bool {
	return r.Netboot.DHCP.Server == "dnsmasq" && r.Cluster.DynamicRange == nil
}

// dnsmasqConf renders a dnsmasq.d file: DHCP only (port=0 leaves DNS to
// the site), the seed's per-node hosts, names and root path, and
// pxelinux.0 for BIOS clients by option 93 (shim for UEFI ones); or, as a proxy, the boot
// options alone. Every value is a typed address or one field as
// DnsmasqField keeps it; the root path is a quoted string.
func dnsmasqConf(r *recipes.Recipe) string {
	c := r.Cluster
	var b strings.Builder
	mode := "the cluster's DHCP server"
	if DnsmasqProxy(r) {
		mode = "proxy DHCP beside the site's DHCP server"
	}
	fmt.Fprintf(&b, "# dnsmasq: written by krgimage for recipe %s (%s).\n", quote.Plain(r.Name), mode)
	b.WriteString("# DHCP only: DNS stays with the site's resolver. tftpd-hpa serves the TFTP tree.\nport=0\n")
	server := quote.DnsmasqField(c.Server.Name) + "," + c.Server.IP.String()
	if DnsmasqProxy(r) {
		// A proxy answers PXE clients only, beside the addresses the site
		// gives; the name and root path come with pxelinux.cfg's nfsroot=.
		fmt.Fprintf(&b, "dhcp-range=%s,proxy,%s\n", c.Subnet.Addr(), c.Subnet.Netmask())
		menu := quote.DnsmasqString("Boot " + quote.Plain(r.Name))
		fmt.Fprintf(&b, "pxe-service=x86PC,%s,pxelinux,%s\n", menu, c.Server.IP)
		if r.Netboot.UEFI != nil {
			// UEFI ROMs ask as EFI BC (7) or x86-64 (9) clients; a
			// file name with its suffix is served as it is.
			for _, csa := range []string{"BC_EFI", "x86-64_EFI"} {
				fmt.Fprintf(&b, "pxe-service=%s,%s,%s,%s\n", csa, menu, UEFIBootFile, c.Server.IP)
			}
			if r.Netboot.HTTP != nil {
				fmt.Fprintf(&b, "# A proxy answers PXE clients only: UEFI HTTP boot clients need the site's DHCP server\n# to answer class %s with %s.\n", HTTPBootClass, HTTPBootURL(r))
			}
		}
		return b.String()
	}
	if rg := c.DynamicRange; rg != nil {
		fmt.Fprintf(&b, "dhcp-range=%s,%s,%s,12h\n", rg.Start, rg.End, c.Subnet.Netmask())
	}
	if c.Gateway.IsValid() {
		fmt.Fprintf(&b, "dhcp-option=option:router,%s\n", c.Gateway)
	}
	// dnsmasq knows the broadcast address (28) by number only.
	fmt.Fprintf(&b, "dhcp-option=28,%s\n", c.Broadcast)
	if c.Domain != "" {
		fmt.Fprintf(&b, "dhcp-option=option:domain-name,%s\n", quote.DnsmasqField(c.Domain))
	}
	if len(c.DNS) > 0 {
		fmt.Fprintf(&b, "dhcp-option=option:dns-server,%s\n", strings.ReplaceAll(joinAddrs(c.DNS), " ", ""))
	}
	if len(c.NTP) > 0 {
		fmt.Fprintf(&b, "dhcp-option=option:ntp-server,%s\n", strings.ReplaceAll(joinAddrs(c.NTP), " ", ""))
	}
	fmt.Fprintf(&b, "dhcp-option=option:root-path,%s\n", quote.DnsmasqString(r.NFSRoot.Server.String()+":"+r.NFSRoot.Path))
	// BIOS clients, and those too old to send option 93, get pxelinux.0.
	b.WriteString("dhcp-match=set:arch,option:client-arch\n")
	b.WriteString("dhcp-match=set:bios,option:client-arch,0\n")
	fmt.Fprintf(&b, "dhcp-boot=tag:bios,pxelinux.0,%s\n", server)
	fmt.Fprintf(&b, "dhcp-boot=tag:!arch,pxelinux.0,%s\n", server)
	if r.Netboot.UEFI != nil {
		// x86-64 UEFI clients ask as EFI BC (7) or EFI x86-64 (9).
		b.WriteString("dhcp-match=set:uefi,option:client-arch,7\n")
		b.WriteString("dhcp-match=set:uefi,option:client-arch,9\n")
		fmt.Fprintf(&b, "dhcp-boot=tag:uefi,%s,%s\n", UEFIBootFile, server)
		if r.Netboot.HTTP != nil {
			// UEFI HTTP boot clients send HTTPClient:Arch:00016:...,
			// and take a URL only from an answer that names the class.
			fmt.Fprintf(&b, "dhcp-vendorclass=set:httpboot,%s\n", HTTPBootClass)
			fmt.Fprintf(&b, "dhcp-option-force=tag:httpboot,60,%s\n", HTTPBootClass)
			fmt.Fprintf(&b, "dhcp-boot=tag:httpboot,%s\n", quote.DnsmasqField(HTTPBootURL(r)))
		}
	}
	for _, n := range r.Nodes() {
		if len(n.MAC) == 0 {
			fmt.Fprintf(&b, "# %s (%s) has no MAC address in the inventory: it boots from the dynamic range.\n", quote.Plain(n.Name), n.IP)
			continue
		}
		fmt.Fprintf(&b, "dhcp-host=%s,%s,%s\n", n.MAC, n.IP, quote.DnsmasqField(n.Name))
	}
	return b.String()
}
