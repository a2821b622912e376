package recipes

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/krgimage/krgimage/internal/compression"
	"github.com/krgimage/krgimage/internal/quote"
)

// DefaultNICs are the network drivers a netboot initramfs carries unless
// the recipe lists its own: common server NICs and the virtual ones
// (virtio_pci is the bus virtio_net cards sit on, not a dependency
// modules.dep knows of).
var DefaultNICs = []string{
	"e1000", "e1000e", "igb", "igc", "ixgbe", "tg3", "bnx2", "bnx2x",
	"r8169", "8139too", "pcnet32", "ne2k-pci", "virtio_net", "virtio_pci", "vmxnet3",
}

// DefaultKernelTargets is Kerrighed 3.0.0's build sequence from its
// INSTALL file, run after ./configure.
var DefaultKernelTargets = []string{"kernel", "all", "kernel-install", "install"}

func (r *Recipe) SetDefaults() {
	r.Suite = "lenny"
	r.Architecture = "amd64"
	r.Variant = "important"
	r.Components = []string{"main"}
	r.Bootstrap = Bootstrap{Method: "native", MergedUsr: "auto"}
}

func (c *Cluster) SetDefaults()   { c.Server.Name = "server" }
func (n *NodeRange) SetDefaults() { n.Start = 1 }
func (n *NFSRoot) SetDefaults()   { n.Mode, n.Version = "ro", 3 }
func (m *Mount) SetDefaults()     { m.Type = "nfs" }
func (i *Initramfs) SetDefaults() { i.Generator, i.Compression = "native", "gzip" }
func (m *Media) SetDefaults()     { m.Kind = "isolinux" }

func (n *Netboot) SetDefaults() {
	n.DHCP = DHCP{Server: "isc", Flavor: "auto", MaxMessageSize: 2048, DenyBootp: true, HostnamePrefix: "krgnode"}
	n.TFTP = TFTP{Root: "/srv/tftp", Form: "auto", Address: "0.0.0.0:69", Username: "tftp", Options: "--secure"}
	n.PXE = PXE{Syslinux: "host"}
}

// normalize fills in the defaults that depend on other keys.
func (r *Recipe) normalize() {
	if r.Name == "" {
		base := filepath.Base(r.Source)
		r.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if c := r.Cluster; c != nil && c.Subnet.IsValid() && !c.Broadcast.IsValid() {
		c.Broadcast = Addr{c.Subnet.Broadcast()}
	}
	if n := r.NFSRoot; n != nil {
		if !n.Server.IsValid() && r.Cluster != nil {
			n.Server = r.Cluster.Server.IP
		}
		if n.Mode == "ro" && n.Writable == nil {
			for _, dir := range []string{"/var", "/tmp", "/root"} {
				n.Writable = append(n.Writable, Mount{Path: dir, Type: "nfs"})
			}
		}
		for i := range n.Writable {
			m := &n.Writable[i]
			if m.Type == "nfs" && m.Source == "" && n.Path != "" {
				m.Source = path.Join(n.Path, m.Path)
			}
			if m.Options == nil {
				if m.Type == "nfs" {
					m.Options = []string{"rw", "hard", "nolock"}
				} else {
					m.Options = []string{"defaults"}
				}
			}
		}
		if n.Tmpfs == nil && Legacy(r.Suite) {
			// systemd suites already have /run (and /var/run -> /run) on
			// tmpfs; lenny needs the seed's fstab line.
			n.Tmpfs = []string{"/var/run"}
		}
	}
	if k := r.Kernel; k != nil && k.Source != "" {
		if k.Mode == "" {
			k.Mode = "host"
		}
		if k.Targets == nil {
			k.Targets = DefaultKernelTargets
		}
	}
	if i := r.Initramfs; i != nil && i.NICs == nil {
		i.NICs = DefaultNICs
	}
	if nb := r.Netboot; nb != nil {
		if nb.DHCP.Flavor == "auto" {
			nb.DHCP.Flavor = "isc"
			if Legacy(r.Suite) {
				nb.DHCP.Flavor = "dhcp3"
			}
		}
		if nb.TFTP.Form == "auto" {
			nb.TFTP.Form = "modern"
			if Legacy(r.Suite) {
				nb.TFTP.Form = "lenny"
			}
		}
		if nb.PXE.Label == "" {
			nb.PXE.Label = r.Name
		}
		if nb.Exports.Clients == "" {
			nb.Exports.Clients = "*"
			if r.Cluster != nil && r.Cluster.Subnet.IsValid() {
				nb.Exports.Clients = r.Cluster.Subnet.String()
			}
		}
		if nb.Exports.Options == nil {
			mode := "rw"
			if r.NFSRoot != nil && r.NFSRoot.Mode == "ro" {
				mode = "ro"
			}
			nb.Exports.Options = []string{mode, "sync", "no_root_squash", "no_subtree_check"}
		}
		if m := nb.Media; m != nil && m.Output == "" {
			m.Output = r.DefaultMedia().Output
		}
	}
	if s := r.Outputs.Snapshot; s != nil {
		if s.Compression == "" {
			s.Compression = string(compression.ForPath(s.Path))
		}
		if s.Path == "" {
			s.Path = r.Name + ".tar" + compression.TarSuffix(compression.Name(s.Compression))
		}
	}
}

// Validator collects what a recipe's checks refuse, each with where the
// recipe wrote it.
type Validator struct {
	r    *Recipe
	errs Errors
	// more counts repeats of an error already reported for the same key
	// path and class: a node range would otherwise report each node.
	more  map[string]int
	first map[string]*Error
}

// Pos returns where the value at a key path was written, or where its
// nearest written parent was.
func (r *Recipe) Pos(keyPath string) Pos {
	for p := keyPath; p != ""; p = parentPath(p) {
		if pos, ok := r.pos[p]; ok {
			return pos
		}
	}
	return Pos{}
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Errorf builds an *Error located at a key path, for problems found after
// loading (a missing file named by the recipe, say).
func (r *Recipe) Errorf(keyPath string, kind error, format string, args ...any) *Error {
	return &Error{File: r.Source, Pos: r.Pos(keyPath), Path: keyPath, Msg: fmt.Sprintf(format, args...), Kind: kind}
}

// Recipe is the recipe being validated, for the checks that depend on
// its other sections (the suite, the cluster, the NFS root).
func (v *Validator) Recipe() *Recipe { return v.r }

// Errorf reports a refusal at keyPath, with the line and column the recipe
// gave it. A repeat of the same refusal for the same key only counts.
func (v *Validator) Errorf(keyPath string, kind error, format string, args ...any) {
	key := keyPath + "\x00" + format
	if _, ok := v.first[key]; ok {
		v.more[key]++
		return
	}
	e := v.r.Errorf(keyPath, kind, format, args...)
	v.first[key] = e
	v.errs = append(v.errs, e)
}

func (v *Validator) finish() Errors {
	for key, n := range v.more {
		v.first[key].Msg += fmt.Sprintf(" (and %d more like it)", n)
	}
	return v.errs
}

func (v *Validator) written(keyPath string) bool {
	_, ok := v.r.pos[keyPath]
	return ok
}

var (
	suiteRE     = regexp.MustCompile(`^[a-z][a-z0-9.-]*$`)
	componentRE = regexp.MustCompile(`^[a-z][a-z0-9/-]*$`)
	kernelArgRE = regexp.MustCompile(`^\S+$`)
)

func (r *Recipe) validate() Errors {
	v := &Validator{r: r, more: map[string]int{}, first: map[string]*Error{}}
	if !suiteRE.MatchString(r.Suite) {
		v.Errorf("suite", ErrInvalid, "invalid suite %q: expected a release code name such as lenny or bookworm", r.Suite)
	}
	if !v.written("name") {
		if msg := checkText("name", r.Name); msg != "" {
			v.Errorf("name", ErrInvalid, "the recipe's file name gives the image name %q, which is not %s: set name:", r.Name, msg)
		}
	}
	for i, name := range r.PublicVariables {
		if !ValidVarName(name) {
			v.Errorf(fmt.Sprintf("public_variables[%d]", i), ErrInvalid, "invalid variable name %q", name)
		}
	}
	if len(r.Components) == 0 {
		v.Errorf("components", ErrMissing, "at least one component is needed (main)")
	}
	for i, c := range r.Components {
		if !componentRE.MatchString(c) {
			v.Errorf(fmt.Sprintf("components[%d]", i), ErrInvalid, "invalid component %q (main, contrib, non-free...)", c)
		}
	}
	if r.Insecure && r.Keyring != "" {
		v.Errorf("insecure", ErrConflict, "insecure: true and keyring contradict each other; give one")
	}
	v.overlap("bootstrap.exclude", r.Bootstrap.Include, r.Bootstrap.Exclude, "both included and excluded")
	if r.Bootstrap.Foreign && r.Bootstrap.Method != "debootstrap" {
		if v.written("bootstrap.method") {
			v.Errorf("bootstrap.foreign", ErrConflict, "foreign bootstrapping needs method: debootstrap")
		} else {
			// The native method runs the target's maintainer scripts
			// itself; only debootstrap has a second stage to run under
			// emulation.
			r.Bootstrap.Method = "debootstrap"
		}
	}
	if r.Bootstrap.Lockfile != "" && r.Bootstrap.Method != "native" {
		v.Errorf("bootstrap.lockfile", ErrConflict, "a lockfile pins the packages of method: native only")
	}
	r.validateProvision(v)
	nodes := r.validateCluster(v)
	r.validateNFSRoot(v)
	r.validateKernel(v)
	r.validateNetboot(v)
	r.validateBootTest(v, nodes)
	if s := r.Outputs.Snapshot; s != nil && v.written("outputs.snapshot.path") {
		byExt, named, err := compression.FromName(s.Path)
		switch {
		case err != nil:
			v.Errorf("outputs.snapshot.path", ErrInvalid, "%s: %v", s.Path, err)
		case named && v.written("outputs.snapshot.compression") && string(byExt) != s.Compression:
			v.Errorf("outputs.snapshot.compression", ErrConflict, "compression %s contradicts the file name %s (%s)", s.Compression, s.Path, byExt)
		}
	}
	return v.finish()
}

func (v *Validator) overlap(keyPath string, a, b []string, what string) {
	in := map[string]bool{}
	for _, x := range a {
		in[x] = true
	}
	for i, x := range b {
		if in[x] {
			v.Errorf(fmt.Sprintf("%s[%d]", keyPath, i), ErrConflict, "package %q is %s", x, what)
		}
	}
}

func (r *Recipe) validateProvision(v *Validator) {
	seen := map[string]string{}
	for i, s := range r.Provision {
		if s.Config == nil {
			continue
		}
		p := fmt.Sprintf("provision[%d].%s", i, s.Type)
		s.Config.Validate(v, p)
		if am, ok := s.Config.(AccountMaker); ok {
			v.uniqueAccounts(p, am.Accounts(), seen)
		}
	}
}

// uniqueAccounts refuses an account whose name or uid an earlier one of
// the recipe's (in seen) gives.
func (v *Validator) uniqueAccounts(keyPath string, accounts []Account, seen map[string]string) {
	for j, u := range accounts {
		up := fmt.Sprintf("%s[%d]", keyPath, j)
		if prev, ok := seen["name:"+u.Name]; ok {
			v.Errorf(up+".name", ErrDuplicate, "user %q is already defined at %s", u.Name, prev)
		}
		seen["name:"+u.Name] = v.posString(up + ".name")
		if u.UID != 0 {
			key := fmt.Sprintf("uid:%d", u.UID)
			if prev, ok := seen[key]; ok {
				v.Errorf(up+".uid", ErrDuplicate, "uid %d is already used at %s", u.UID, prev)
			}
			seen[key] = v.posString(up + ".uid")
		}
	}
}

func (v *Validator) posString(keyPath string) string {
	p := v.r.Pos(keyPath)
	return fmt.Sprintf("line %d", p.Line)
}

// ResolvedNode is an inventory node with its range expanded.
type ResolvedNode struct {
	Name   string
	IP     netip.Addr
	MAC    net.HardwareAddr
	Append []string
	Kernel string
	Initrd string
	// Path locates the node's definition in the recipe.
	Path string
}

// Nodes returns every inventory node, explicit ones first, then ranges
// in order.
func (r *Recipe) Nodes() []ResolvedNode {
	if r.Cluster == nil {
		return nil
	}
	var out []ResolvedNode
	for i, n := range r.Cluster.Nodes {
		out = append(out, ResolvedNode{Name: n.Name, IP: n.IP.Addr, MAC: n.MAC.HardwareAddr, Append: n.Append,
			Kernel: n.Kernel, Initrd: n.Initrd, Path: fmt.Sprintf("cluster.nodes[%d]", i)})
	}
	for i, nr := range r.Cluster.NodeRanges {
		for k := 0; k < nr.Count && k < 65536; k++ {
			ip, ok := addAddr(nr.FirstIP.Addr, k)
			if !ok || !nr.FirstIP.IsValid() {
				break
			}
			n := ResolvedNode{Name: fmt.Sprintf("%s%0*d", nr.Prefix, nr.Width, nr.Start+k), IP: ip, Append: nr.Append,
				Path: fmt.Sprintf("cluster.node_ranges[%d]", i)}
			if nr.FirstMAC.Set() {
				if mac, ok := addMAC(nr.FirstMAC.HardwareAddr, k); ok {
					n.MAC = mac
				}
			}
			out = append(out, n)
		}
	}
	return out
}

func inRange(a netip.Addr, rg *AddrRange) bool {
	return rg != nil && rg.Start.IsValid() && rg.End.IsValid() && a.Compare(rg.Start.Addr) >= 0 && a.Compare(rg.End.Addr) <= 0
}

func (r *Recipe) validateCluster(v *Validator) []ResolvedNode {
	c := r.Cluster
	if c == nil {
		return nil
	}
	subnet := c.Subnet
	if !subnet.IsValid() {
		v.Errorf("cluster.subnet", ErrMissing, "the cluster needs a subnet, such as 10.11.12.0/24")
	}
	if !c.Server.IP.IsValid() {
		v.Errorf("cluster.server.ip", ErrMissing, "the cluster needs the server's IP address")
	}
	inSubnet := func(keyPath string, a netip.Addr, what string) bool {
		if !subnet.IsValid() || !a.IsValid() {
			return true
		}
		if !subnet.Contains(a) {
			v.Errorf(keyPath, ErrInvalid, "%s %s is outside the subnet %s", what, a, subnet)
			return false
		}
		if a == subnet.Addr() || a == subnet.Broadcast() {
			v.Errorf(keyPath, ErrInvalid, "%s %s is the subnet's network or broadcast address", what, a)
			return false
		}
		return true
	}
	inSubnet("cluster.server.ip", c.Server.IP.Addr, "server address")
	if c.Gateway.IsValid() {
		inSubnet("cluster.gateway", c.Gateway.Addr, "gateway")
	}
	if rg := c.DynamicRange; rg != nil {
		if !rg.Start.IsValid() || !rg.End.IsValid() {
			v.Errorf("cluster.dynamic_range", ErrMissing, "a dynamic range needs start and end")
		} else {
			inSubnet("cluster.dynamic_range.start", rg.Start.Addr, "range start")
			inSubnet("cluster.dynamic_range.end", rg.End.Addr, "range end")
			if rg.Start.Compare(rg.End.Addr) > 0 {
				v.Errorf("cluster.dynamic_range", ErrInvalid, "range start %s is after its end %s", rg.Start, rg.End)
			}
			if inRange(c.Server.IP.Addr, rg) {
				v.Errorf("cluster.server.ip", ErrConflict, "server address %s is inside the dynamic range %s-%s", c.Server.IP, rg.Start, rg.End)
			}
		}
	}
	for i, n := range c.Nodes {
		p := fmt.Sprintf("cluster.nodes[%d]", i)
		if n.Name == "" {
			v.Errorf(p, ErrMissing, "a node needs a name")
		}
		if !n.IP.IsValid() {
			v.Errorf(p, ErrMissing, "node %s needs an ip", n.Name)
		}
		v.kernelArgs(p+".append", n.Append)
	}
	for i, nr := range c.NodeRanges {
		p := fmt.Sprintf("cluster.node_ranges[%d]", i)
		if nr.Prefix == "" {
			v.Errorf(p, ErrMissing, "a node range needs a prefix")
		}
		if !nr.FirstIP.IsValid() {
			v.Errorf(p, ErrMissing, "a node range needs first_ip")
		} else if _, ok := addAddr(nr.FirstIP.Addr, nr.Count-1); !ok {
			v.Errorf(p+".count", ErrInvalid, "%d nodes from %s run past 255.255.255.255", nr.Count, nr.FirstIP)
		}
		if nr.FirstMAC.Set() {
			if _, ok := addMAC(nr.FirstMAC.HardwareAddr, nr.Count-1); !ok {
				v.Errorf(p+".first_mac", ErrInvalid, "%d MAC addresses from %s overflow", nr.Count, nr.FirstMAC)
			}
		}
		if last := len(nr.Prefix) + len(fmt.Sprintf("%0*d", nr.Width, nr.Start+nr.Count-1)); last > 63 {
			v.Errorf(p+".prefix", ErrInvalid, "generated names would be %d characters, over the 63 a host name label allows", last)
		}
		v.kernelArgs(p+".append", nr.Append)
	}
	nodes := r.Nodes()
	names, ips, macs := map[string]string{}, map[netip.Addr]string{}, map[string]string{}
	if c.Server.IP.IsValid() {
		ips[c.Server.IP.Addr] = "the server"
	}
	if c.Server.Name != "" {
		names[c.Server.Name] = "the server"
	}
	for _, n := range nodes {
		ipPath, namePath, macPath := n.Path+".ip", n.Path+".name", n.Path+".mac"
		if strings.HasPrefix(n.Path, "cluster.node_ranges") {
			ipPath, namePath, macPath = n.Path+".first_ip", n.Path+".prefix", n.Path+".first_mac"
		}
		where := v.posString(n.Path)
		if prev, ok := names[n.Name]; ok && n.Name != "" {
			v.Errorf(namePath, ErrDuplicate, "node name %q is already used by %s", n.Name, prev)
		} else {
			names[n.Name] = "the node at " + where
		}
		if n.IP.IsValid() {
			if prev, ok := ips[n.IP]; ok {
				v.Errorf(ipPath, ErrDuplicate, "address %s of node %s is already used by %s", n.IP, n.Name, prev)
			} else {
				ips[n.IP] = fmt.Sprintf("node %s (%s)", n.Name, where)
			}
			if inSubnet(ipPath, n.IP, "node "+n.Name+"'s address") && inRange(n.IP, c.DynamicRange) {
				v.Errorf(ipPath, ErrConflict, "address %s of node %s is inside the dynamic range %s-%s", n.IP, n.Name, c.DynamicRange.Start, c.DynamicRange.End)
			}
		}
		if len(n.MAC) > 0 {
			m := n.MAC.String()
			if prev, ok := macs[m]; ok {
				v.Errorf(macPath, ErrDuplicate, "MAC %s of node %s is already used by %s", m, n.Name, prev)
			} else {
				macs[m] = fmt.Sprintf("node %s (%s)", n.Name, where)
			}
		}
	}
	return nodes
}

func (v *Validator) kernelArgs(keyPath string, args []string) {
	for i, a := range args {
		if !kernelArgRE.MatchString(a) {
			v.Errorf(fmt.Sprintf("%s[%d]", keyPath, i), ErrInvalid, "kernel argument %q must be one word; give each argument as its own list item", a)
		}
	}
}

func (r *Recipe) validateNFSRoot(v *Validator) {
	n := r.NFSRoot
	if n == nil {
		return
	}
	if n.Path == "" {
		v.Errorf("nfsroot.path", ErrMissing, "the NFS root needs the exported path, such as /NFSROOT/kerrighed")
	}
	if !n.Server.IsValid() {
		v.Errorf("nfsroot.server", ErrMissing, "the NFS root needs a server address (nfsroot.server or cluster.server.ip)")
	}
	if n.Mode == "rw" && v.written("nfsroot.writable") && len(n.Writable) > 0 {
		v.Errorf("nfsroot.writable", ErrConflict, "writable mounts are for a read-only root (mode: ro); a read-write root is writable everywhere")
	}
	seen := map[string]bool{}
	for i, m := range n.Writable {
		p := fmt.Sprintf("nfsroot.writable[%d]", i)
		switch {
		case m.Path == "":
			v.Errorf(p, ErrMissing, "a writable mount needs a path")
		case m.Path == "/":
			v.Errorf(p+".path", ErrInvalid, "the root itself cannot be a writable mount; use mode: rw")
		case seen[m.Path]:
			v.Errorf(p+".path", ErrDuplicate, "%s is listed twice", m.Path)
		}
		seen[m.Path] = true
		if m.Type == "tmpfs" && v.written(p+".source") {
			v.Errorf(p+".source", ErrConflict, "a tmpfs mount has no source")
		}
	}
	for i, t := range n.Tmpfs {
		if seen[t] {
			v.Errorf(fmt.Sprintf("nfsroot.tmpfs[%d]", i), ErrDuplicate, "%s is already a writable mount", t)
		}
		seen[t] = true
	}
}

func (r *Recipe) validateKernel(v *Validator) {
	k := r.Kernel
	if k == nil {
		return
	}
	switch {
	case k.Package != "" && k.Source != "":
		v.Errorf("kernel.source", ErrConflict, "give either package (a packaged kernel) or source (a kernel to build), not both")
	case k.Package == "" && k.Source == "":
		v.Errorf("kernel", ErrMissing, "the kernel needs package (such as linux-image-amd64) or source (a tree to build)")
	case k.Package != "":
		for _, key := range []string{"linux", "config", "configure", "targets", "jobs", "mode", "env", "sha256"} {
			if v.written("kernel." + key) {
				v.Errorf("kernel."+key, ErrConflict, "%s applies to a kernel built from source, not to package %s", key, k.Package)
			}
		}
	case isURL(k.Source) && k.SHA256 == "":
		v.Errorf("kernel.sha256", ErrMissing, "a kernel source downloaded from %s needs its sha256", k.Source)
	}
	for i, t := range k.Targets {
		if t == "" || strings.ContainsAny(t, " \t") {
			v.Errorf(fmt.Sprintf("kernel.targets[%d]", i), ErrInvalid, "invalid make target %q", t)
		}
	}
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "ftp://")
}

func (r *Recipe) validateNetboot(v *Validator) {
	nb := r.Netboot
	if nb == nil {
		return
	}
	if r.Cluster == nil {
		v.Errorf("netboot", ErrMissing, "netboot needs a cluster: section (subnet, server, nodes)")
	}
	if r.NFSRoot == nil {
		v.Errorf("netboot", ErrMissing, "netboot needs an nfsroot: section (the root-path nodes mount)")
	}
	if nb.DHCP.Server != "isc" && nb.DHCP.Flavor == "dhcp3" && v.written("netboot.dhcp.flavor") {
		v.Errorf("netboot.dhcp.flavor", ErrConflict, "flavor dhcp3 is ISC dhcpd's; the configuration is for %s (netboot.dhcp.server)", nb.DHCP.Server)
	}
	if host, _, err := net.SplitHostPort(nb.TFTP.Address); err != nil || !validHost(host) {
		v.Errorf("netboot.tftp.address", ErrInvalid, "invalid address %q: expected HOST:PORT such as 0.0.0.0:69", nb.TFTP.Address)
	}
	r.validateTFTPRoot(v)
	if h := nb.HTTP; h != nil && h.Port > 65535 {
		v.Errorf("netboot.http.port", ErrInvalid, "invalid port %d: expected 1 to 65535", h.Port)
	}
	if nb.UEFI != nil && SuiteVersion(r.Suite) < 10 && nb.UEFI.Loaders == "image" {
		v.Errorf("netboot.uefi.loaders", ErrConflict, "%s has no signed shim or GRUB network image (Debian signs them from buster on): use loaders: host", r.Suite)
	}
	if nb.HTTP != nil && Legacy(r.Suite) && nb.PXE.Syslinux == "image" {
		v.Errorf("netboot.http", ErrConflict, "%s's syslinux has no lpxelinux.0, which an HTTP boot needs: use pxelinux.syslinux: host", r.Suite)
	}
	v.kernelArgs("netboot.pxelinux.append", nb.PXE.Append)
	if strings.ContainsAny(nb.PXE.Label, " \t") || nb.PXE.Label == "" && v.written("netboot.pxelinux.label") {
		v.Errorf("netboot.pxelinux.label", ErrInvalid, "a pxelinux label is one word")
	}
	if nb.Exports.Options != nil && len(nb.Exports.Options) == 0 {
		// "()" would leave the root to exportfs's own defaults (ro,
		// root_squash): a read-write root would be read-only, and root on
		// the nodes nobody. Leaving the key out gives krgimage's.
		v.Errorf("netboot.exports.options", ErrInvalid, "list the exported root's options (such as [ro, sync, no_subtree_check]), or leave options out for the defaults")
	}
	if nb.Exports.Clients != "*" {
		if _, err := netip.ParsePrefix(nb.Exports.Clients); err != nil {
			if _, err := netip.ParseAddr(nb.Exports.Clients); err != nil {
				v.Errorf("netboot.exports.clients", ErrInvalid, "invalid clients %q: expected *, an address or a CIDR network", nb.Exports.Clients)
			}
		}
	}
	r.validateMedia(v)
}

// validHost: an address, or a host name, as in.tftpd's --address takes.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return h == "" || hostnameRE.MatchString(h) || domainRE.MatchString(h)
}

func (r *Recipe) validateBootTest(v *Validator, nodes []ResolvedNode) {
	b := r.BootTest
	if b == nil {
		return
	}
	if r.NFSRoot == nil {
		v.Errorf("boot_test", ErrMissing, "boot_test needs an nfsroot: section")
	}
	if b.Nodes > 1 && b.Network != "netns" {
		v.Errorf("boot_test.nodes", ErrConflict, "booting %d nodes at once needs network: netns", b.Nodes)
	}
	if b.Network == "netns" {
		withMAC := 0
		for _, n := range nodes {
			if len(n.MAC) > 0 {
				withMAC++
			}
		}
		if withMAC < b.Nodes {
			v.Errorf("boot_test.nodes", ErrInvalid, "netns mode boots inventory nodes by MAC: %d wanted, %d nodes have a mac", b.Nodes, withMAC)
		}
	}
	for i, c := range b.Checks {
		if strings.TrimSpace(c.Run) == "" {
			v.Errorf(fmt.Sprintf("boot_test.checks[%d].run", i), ErrMissing, "a check needs a command to run")
		}
	}
	if b.Login != nil && b.Login.User == "" {
		v.Errorf("boot_test.login.user", ErrMissing, "a login needs a user")
	}
	if b.Login != nil && strings.IndexFunc(b.Login.Password.Reveal(), quote.IsControl) >= 0 {
		// Typed on the console, a newline would end the password early
		// and type the rest as a command. The value is not shown.
		v.Errorf("boot_test.login.password", ErrInvalid, "a password typed on the console cannot hold control characters (newline, tab, ...)")
	}
}

// Written reports whether the recipe spelt out the value at a key path,
// rather than leaving it to its default.
func (r *Recipe) Written(keyPath string) bool {
	_, ok := r.pos[keyPath]
	return ok
}
