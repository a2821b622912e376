package netboot

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strings"

	"github.com/krgimage/krgimage/internal/quote"
	"github.com/krgimage/krgimage/recipes"
)

// HexName is pxelinux's per-node configuration file name: the IPv4
// address in upper-case hexadecimal (10.11.12.101 -> 0A0B0C65).
func HexName(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("%02X%02X%02X%02X", b[0], b[1], b[2], b[3])
}

// MACName is pxelinux's file name for a MAC address: 01- (Ethernet)
// then the address in lower case with dashes.
func MACName(mac string) string {
	return "01-" + strings.ToLower(strings.ReplaceAll(mac, ":", "-"))
}

// NFSRootArg is the nfsroot= kernel argument for the recipe's root.
func NFSRootArg(r *recipes.Recipe) string {
	n := r.NFSRoot
	arg := "nfsroot=" + n.Server.String() + ":" + n.Path
	opts := append([]string{}, n.Options...)
	if n.Version == 4 {
		opts = append([]string{"vers=4"}, opts...)
	}
	if len(opts) > 0 {
		arg += "," + strings.Join(opts, ",")
	}
	return arg
}

// KernelArgs is the append line every node boots with: the seed's
// "ip=dhcp root=/dev/nfs", the NFS root, the mount mode and the recipe's
// own arguments (session_id=1 autonodeid=1 for Kerrighed).
func KernelArgs(r *recipes.Recipe, extra []string) []string {
	args := []string{"ip=dhcp", "root=/dev/nfs", NFSRootArg(r), r.NFSRoot.Mode}
	args = append(args, r.Netboot.PXE.Append...)
	return append(args, extra...)
}

// Boot names the files a node boots, relative to the TFTP root.
type Boot struct {
	Kernel string
	Initrd string
}

var consoleRE = regexp.MustCompile(`^console=ttyS(\d+)(?:,(\d+))?`)

// SerialConsole finds the serial line (unit and baud rate, 9600 by
// default) a kernel's console= argument names, so that a boot loader can
// talk on the line a console-only node is watched on.
func SerialConsole(args []string) (unit, baud string, ok bool) {
	for _, a := range args {
		if m := consoleRE.FindStringSubmatch(a); m != nil {
			baud := m[2]
			if baud == "" {
				baud = "9600"
			}
			return m[1], baud, true
		}
	}
	return "", "", false
}

// PXEConfig renders a pxelinux configuration file: the seed's DEFAULT,
// LABEL, kernel and append lines.
func PXEConfig(r *recipes.Recipe, label string, b Boot, args []string, comment string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# pxelinux.cfg: written by krgimage for recipe %s%s.\n", quote.Plain(r.Name), quote.Plain(comment))
	// pxelinux itself talks on the serial line the kernel is told to use,
	// so a console-only node shows the boot loader too.
	if unit, baud, ok := SerialConsole(args); ok {
		fmt.Fprintf(&sb, "SERIAL %s %s\n", unit, baud)
	}
	// pxelinux has no quoting: each value is kept to one word of its
	// line, so that none can start a directive of its own.
	label = quote.Word(label)
	fmt.Fprintf(&sb, "DEFAULT %s\n", label)
	if t := r.Netboot.PXE.Timeout; t > 0 {
		fmt.Fprintf(&sb, "PROMPT 1\nTIMEOUT %d\n", t)
	}
	fmt.Fprintf(&sb, "LABEL %s\n", label)
	fmt.Fprintf(&sb, "    kernel %s\n", quote.Word(b.Kernel))
	line := args
	if b.Initrd != "" {
		line = append([]string{"initrd=" + b.Initrd}, args...)
	}
	fmt.Fprintf(&sb, "    append %s\n", quote.Words(line))
	if ip := r.Netboot.PXE.IPAppend; ip > 0 {
		fmt.Fprintf(&sb, "    IPAPPEND %d\n", ip)
	}
	return sb.String()
}

// DHCPConf renders the configuration of the recipe's DHCP server
// (netboot.dhcp.server), which goes to DHCPPath.
func DHCPConf(r *recipes.Recipe) string {
	switch r.Netboot.DHCP.Server {
	case "kea":
		return keaConf(r)
	case "dnsmasq":
		return dnsmasqConf(r)
	}
	return iscConf(r)
}

// iscConf renders dhcpd.conf in the seed's four parts.
func iscConf(r *recipes.Recipe) string {
	c, d := r.Cluster, r.Netboot.DHCP
	var b strings.Builder
	fmt.Fprintf(&b, "# dhcpd.conf: written by krgimage for recipe %s (%s).\n\n", quote.Plain(r.Name), map[string]string{"dhcp3": "dhcp3-server", "isc": "isc-dhcp-server"}[d.Flavor])
	b.WriteString("### Part 1: general options\n")
	fmt.Fprintf(&b, "option dhcp-max-message-size %d;\n", d.MaxMessageSize)
	b.WriteString("use-host-decl-names on;\n")
	if d.DenyBootp {
		b.WriteString("deny bootp;\n")
	}
	if r.Netboot.UEFI != nil {
		b.WriteString("# RFC 4578's client system architecture: 7 and 9 are x86-64 UEFI PXE, 16 its HTTP boot.\n")
		b.WriteString("option arch code 93 = unsigned integer 16;\n")
	}
	b.WriteString("\n### Part 2: site options\n")
	if c.Domain != "" {
		fmt.Fprintf(&b, "option domain-name %s;\n", quote.DHCP(c.Domain))
	}
	if len(c.DNS) > 0 {
		fmt.Fprintf(&b, "option domain-name-servers %s;\n", joinAddrs(c.DNS))
	}
	if len(c.NTP) > 0 {
		fmt.Fprintf(&b, "option ntp-servers %s;\n", joinAddrs(c.NTP))
	}
	b.WriteString("\n### Part 3: the cluster's network only\n")
	fmt.Fprintf(&b, "subnet %s netmask %s {\n", c.Subnet.Addr(), c.Subnet.Netmask())
	if c.Gateway.IsValid() {
		fmt.Fprintf(&b, "\toption routers %s;\n", c.Gateway)
	}
	fmt.Fprintf(&b, "\toption broadcast-address %s;\n", c.Broadcast)
	if rg := c.DynamicRange; rg != nil {
		fmt.Fprintf(&b, "\trange %s %s;\n", rg.Start, rg.End)
		fmt.Fprintf(&b, "\t# Nodes outside the inventory are named %sXX, XX the last byte of their address.\n", quote.Plain(d.HostnamePrefix))
		fmt.Fprintf(&b, "\tsend host-name = concat(%s, binary-to-ascii(10, 8, \".\", substring(leased-address, 3, 1)));\n", quote.DHCP(d.HostnamePrefix))
	}
	b.WriteString("}\n")
	b.WriteString("\n### Part 4: what nodes boot\n")
	b.WriteString("group {\n")
	if r.Netboot.UEFI != nil {
		b.WriteString("\tif ")
		if r.Netboot.HTTP != nil {
			// The client takes a URL only from an answer that names its
			// class back.
			fmt.Fprintf(&b, "substring(option vendor-class-identifier, 0, %d) = %s {\n", len(HTTPBootClass), quote.DHCP(HTTPBootClass))
			fmt.Fprintf(&b, "\t\toption vendor-class-identifier %s;\n\t\tfilename %s;\n\t} elsif ", quote.DHCP(HTTPBootClass), quote.DHCP(HTTPBootURL(r)))
		}
		fmt.Fprintf(&b, "option arch = 00:07 or option arch = 00:09 {\n\t\tfilename %s;\n\t} else {\n\t\tfilename \"pxelinux.0\";\n\t}\n", quote.DHCP(UEFIBootFile))
	} else {
		b.WriteString("\tfilename \"pxelinux.0\";\n")
	}
	fmt.Fprintf(&b, "\tnext-server %s;\n", c.Server.IP)
	fmt.Fprintf(&b, "\tserver-name %s;\n", quote.DHCP(c.Server.Name))
	fmt.Fprintf(&b, "\toption root-path %s;\n", quote.DHCP(r.NFSRoot.Server.String()+":"+r.NFSRoot.Path))
	for _, n := range r.Nodes() {
		if len(n.MAC) == 0 {
			fmt.Fprintf(&b, "\t# %s (%s) has no MAC address in the inventory: it boots from the dynamic range.\n", quote.Plain(n.Name), n.IP)
			continue
		}
		// use-host-decl-names only names a host when no host-name option
		// applies, and the subnet's krgnodeXX expression does: the
		// host's own option, more specific, wins over it.
		fmt.Fprintf(&b, "\thost %s { hardware ethernet %s; fixed-address %s; option host-name %s; }\n", quote.Word(n.Name), n.MAC, n.IP, quote.DHCP(n.Name))
	}
	b.WriteString("}\n")
	return b.String()
}

func joinAddrs(as []recipes.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// TFTPDefaults renders /etc/default/tftpd-hpa in the suite's form.
func TFTPDefaults(r *recipes.Recipe) string {
	t := r.Netboot.TFTP
	head := "# /etc/default/tftpd-hpa: written by krgimage for recipe " + quote.Plain(r.Name) + ".\n"
	// The init script sources this file: every value is one shell word.
	if t.Form == "lenny" {
		return head + "RUN_DAEMON=\"yes\"\nOPTIONS=" + quote.ShellValue("-l -s "+t.Root) + "\n"
	}
	return head + fmt.Sprintf("TFTP_USERNAME=%s\nTFTP_DIRECTORY=%s\nTFTP_ADDRESS=%s\nTFTP_OPTIONS=%s\n",
		quote.ShellValue(t.Username), quote.ShellValue(t.Root), quote.ShellValue(t.Address), quote.ShellValue(t.Options))
}

// Exports renders the NFS exports: the root, read-only for a read-only
// root, and each writable directory read-write.
func Exports(r *recipes.Recipe) string {
	n, e := r.NFSRoot, r.Netboot.Exports
	var b strings.Builder
	fmt.Fprintf(&b, "# NFS exports: written by krgimage for recipe %s.\n", quote.Plain(r.Name))
	fmt.Fprintf(&b, "%s %s\n", quote.Octal(n.Path), exportClient(e.Clients, strings.Join(e.Options, ",")))
	if n.Mode == "ro" {
		rw := strings.Join(writableOptions(e.Options), ",")
		for _, m := range n.Writable {
			if m.Type == "nfs" {
				fmt.Fprintf(&b, "%s %s\n", quote.Octal(m.Source), exportClient(e.Clients, rw))
			}
		}
	}
	return b.String()
}

// writableOptions are the root's export options for a writable
// directory: rw first, then the others in order. Options are compared
// whole: root_squash only begins with ro.
func writableOptions(opts []string) []string {
	out := []string{"rw"}
	for _, o := range opts {
		if o != "ro" && o != "rw" {
			out = append(out, o)
		}
	}
	return out
}

// exportClient is one client field of an exports line, CLIENT(OPTIONS):
// exportfs has no quoting there, so each part is kept to one word without
// parentheses.
func exportClient(clients, opts string) string {
	strip := func(s string) string { return strings.NewReplacer("(", "_", ")", "_").Replace(quote.Word(s)) }
	return strip(clients) + "(" + strip(opts) + ")"
}

// Paths of the generated server files, relative to the tree's root.
func DHCPPath(r *recipes.Recipe) string {
	switch d := r.Netboot.DHCP; {
	case d.Server == "kea":
		return KeaPath
	case d.Server == "dnsmasq":
		return DnsmasqPath
	case d.Flavor == "dhcp3":
		return "etc/dhcp3/dhcpd.conf"
	}
	return "etc/dhcp/dhcpd.conf"
}

// DHCPService is the Debian service that reads DHCPPath, and its package.
func DHCPService(r *recipes.Recipe) (service, pkg string) {
	switch d := r.Netboot.DHCP; {
	case d.Server == "kea":
		return "kea-dhcp4-server", "kea-dhcp4-server"
	case d.Server == "dnsmasq":
		return "dnsmasq", "dnsmasq"
	case d.Flavor == "dhcp3":
		return "dhcp3-server", "dhcp3-server"
	}
	return "isc-dhcp-server", "isc-dhcp-server"
}

const (
	KeaPath          = "etc/kea/kea-dhcp4.conf"
	DnsmasqPath      = "etc/dnsmasq.d/krgimage.conf"
	TFTPDefaultsPath = "etc/default/tftpd-hpa"
	ExportsPath      = "etc/exports.d/krgimage.exports"
)

// TFTPRoot is the TFTP directory in the tree.
func TFTPRoot(r *recipes.Recipe) string {
	return strings.TrimPrefix(path.Clean(r.Netboot.TFTP.Root), "/")
}

// NginxPath is the nginx site of an HTTP boot, which the administrator
// enables with a link in sites-enabled.
const NginxPath = "etc/nginx/sites-available/krgimage"

// NginxSite renders the nginx site that serves the TFTP tree over HTTP at
// the server's address: files only, no listing. The root is quoted as
// nginx reads a quoted string.
func NginxSite(r *recipes.Recipe) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# nginx site: written by krgimage for recipe %s: the TFTP tree over HTTP.\n", quote.Plain(r.Name))
	b.WriteString("server {\n")
	fmt.Fprintf(&b, "\tlisten %s;\n", netip.AddrPortFrom(r.Cluster.Server.IP.Addr, uint16(r.Netboot.HTTP.Port)))
	fmt.Fprintf(&b, "\troot %s;\n", quote.Nginx(r.Netboot.TFTP.Root))
	b.WriteString("\tautoindex off;\n\tlocation / {\n\t\ttry_files $uri =404;\n\t}\n")
	if r.Netboot.UEFI != nil {
		// Firmware boots the download as a disk by its type.
		fmt.Fprintf(&b, "\tlocation = /%s {\n\t\ttypes { }\n\t\tdefault_type %s;\n\t}\n", HTTPBootFile, HTTPBootMIME)
	}
	b.WriteString("}\n")
	return b.String()
}
