package boottest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/layout"
	"github.com/krgimage/krgimage/internal/netns"
	"github.com/krgimage/krgimage/internal/nfsserver"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/qemu"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/snapshot"
)

// Errors callers branch on.
var (
	// ErrNeedsRoot: boot tests need root (network namespaces, and the
	// NFS server's VFS backend needs CAP_DAC_READ_SEARCH).
	ErrNeedsRoot = errors.New("boot-test needs root")
	// ErrFailed: a node did not boot, or a check failed.
	ErrFailed = errors.New("boot test failed")
	// ErrNotBuilt: the output directory is not a finished build.
	ErrNotBuilt = errors.New("not a built image")
)

// Options configure a boot test of a build's output.
type Options struct {
	Recipe *recipes.Recipe
	// Out is the build's output directory: rootfs and netboot/.
	Out string
	// Netboot is the boot server's tree to serve; empty means the
	// build's OUT/netboot. krgimage boot-test --http gives one made for
	// an HTTP boot.
	Netboot string
	// Network is user or netns; empty means the recipe's.
	Network string
	// DHCP is the DHCP server netns runs: isc, kea, dnsmasq, or
	// dnsmasq-proxy (beside a site DHCP server the test runs on a
	// machine of its own); empty means the recipe's netboot.dhcp.server. ISC dhcpd reads the
	// build's own dhcpd.conf; Kea and dnsmasq read one written for the
	// test by the same generator, with the test's lease file.
	DHCP string
	// Nodes boots this many inventory nodes (netns); 0 means the recipe's.
	Nodes int
	// Timeout per node; 0 means the recipe's.
	Timeout time.Duration
	// Media boots the nodes from this ISO (krgimage media) instead of
	// PXE: as a CD, or as a USB stick with MediaUSB; the NFS root and
	// the network are the same.
	Media    string
	MediaUSB bool
	// Firmware is what the nodes start: bios (the default), uefi, or
	// uefi-secureboot (Secure Boot on, Microsoft's keys enrolled). A
	// UEFI network boot loads shim (netboot.uefi), a BIOS one pxelinux.
	Firmware string
	Log      *slog.Logger
	Progress *progress.Display
	// Clock is the wall clock (durations in the report).
	Clock func() time.Time
	// Accel is the accelerator choice the nodes share; nil is the
	// process's. Tests give one that probes a fake /dev/kvm.
	Accel *qemu.Choice
}

// PhaseTime is when a phase was reached, in seconds since QEMU started.
type PhaseTime struct {
	Phase   string  `json:"phase"`
	Seconds float64 `json:"seconds"`
}

// CheckResult is one check run on a booted node.
type CheckResult struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Output string `json:"output,omitempty"`
}

// NodeResult is how one node's boot went.
type NodeResult struct {
	Name     string      `json:"name"`
	IP       string      `json:"ip"`
	MAC      string      `json:"mac"`
	Passed   bool        `json:"passed"`
	Phase    string      `json:"phase"`
	Seconds  float64     `json:"seconds"`
	Timeline []PhaseTime `json:"timeline"`
	Hostname string      `json:"hostname,omitempty"`
	// Addresses are the node's IPv4 addresses, as it reported them.
	Addresses []string      `json:"addresses,omitempty"`
	Checks    []CheckResult `json:"checks,omitempty"`
	Error     string        `json:"error,omitempty"`
	Console   string        `json:"console"`
	// Accel is the accelerator the node ran under; Attempts lists each
	// QEMU start with its console log when there was more than one (a
	// KVM guest that died silently, then TCG).
	Accel    string         `json:"accel,omitempty"`
	Attempts []qemu.Attempt `json:"attempts,omitempty"`
}

// Result is a boot test's report, written to OUT/boot-test/.
type Result struct {
	Recipe  string `json:"recipe"`
	Network string `json:"network"`
	// DHCP is the DHCP server netns ran (dnsmasq-proxy: a proxy beside
	// a site server).
	DHCP string `json:"dhcp,omitempty"`
	// Firmware is what the nodes started: bios, uefi or uefi-secureboot;
	// HTTPBoot says UEFI nodes booted by UEFI HTTP boot.
	Firmware string `json:"firmware"`
	HTTPBoot bool   `json:"http_boot,omitempty"`
	// Accel is the accelerator the nodes ran under and why (KVM only
	// when a probe machine ran the BIOS under it), as it stood after the
	// boots: a KVM guest that dies silently falls back to TCG mid-run.
	// It is "mixed" when nodes ran under different ones.
	qemu.Accel
	Passed  bool         `json:"passed"`
	Verdict string       `json:"verdict"`
	Nodes   []NodeResult `json:"nodes"`
	// RootUnchanged reports that a read-only root was not modified by the
	// nodes that booted from it (nil when not checked).
	RootUnchanged *bool `json:"root_unchanged,omitempty"`
	// RootChanges lists the first differences when it was modified.
	RootChanges []string `json:"root_changes,omitempty"`
}

// Dir is the boot test's directory in the output.
const Dir = layout.BootTestName

// Run boots the build in Out and reports. NFS server, DHCP and TFTP
// servers and QEMU are stopped whatever happens, and the console logs and
// a verdict are left in OUT/boot-test.
func Run(ctx context.Context, o Options) (*Result, error) {
	p, err := prepare(ctx, o)
	if err != nil {
		return nil, err
	}
	var c cleanups
	defer c.unwind(ctx, p.o.Log)
	s, err := serve(ctx, p, &c)
	if err != nil {
		return nil, err
	}
	return check(ctx, p, boot(ctx, p, s))
}

// plan is what prepare settles before anything starts.
type plan struct {
	// o has the recipe's defaults filled in and Out made absolute.
	o     Options
	r     *recipes.Recipe
	bt    *recipes.BootTest
	nodes []recipes.ResolvedNode
	// root is the image root with its links resolved: the NFS server
	// exports it as is.
	root, tftp, work string
	// before is a read-only root's manifest before the boot (nil for a
	// read-write root): it must come back exactly as it went.
	before *snapshot.Manifest
}

// withDefaults fills in what o leaves to the recipe, from its boot_test
// section or, without one, from that section's defaults.
func withDefaults(o Options) (Options, *recipes.BootTest) {
	bt := o.Recipe.BootTest
	if bt == nil {
		bt = recipes.DefaultBootTest()
	}
	if o.Network == "" {
		o.Network = bt.Network
	}
	if o.Nodes == 0 {
		o.Nodes = bt.Nodes
	}
	if o.Timeout == 0 {
		o.Timeout = bt.Timeout.Duration
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o, bt
}

// prepare refuses what cannot boot before anything starts, probes the
// accelerator, empties OUT/boot-test and lists a read-only root.
func prepare(ctx context.Context, o Options) (*plan, error) {
	o, bt := withDefaults(o)
	r := o.Recipe
	var err error
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: it runs its servers in a private network namespace, and nfs-ganesha's VFS backend needs CAP_DAC_READ_SEARCH", ErrNeedsRoot)
	}
	if r.NFSRoot == nil || r.Netboot == nil || r.Cluster == nil {
		return nil, fmt.Errorf("%w: the recipe needs nfsroot, cluster and netboot sections to boot nodes", ErrNotBuilt)
	}
	if o.Nodes > 1 && o.Network != "netns" {
		return nil, fmt.Errorf("booting %d nodes at once needs --network netns", o.Nodes)
	}
	if r, err = withDHCP(r, o); err != nil {
		return nil, err
	}
	if r.Netboot.HTTP != nil && o.Network != "netns" && o.Media == "" {
		return nil, fmt.Errorf("%w: an HTTP boot needs --network netns, where nginx serves the kernel and initramfs", ErrServerChoice)
	}
	nodes, err := pickNodes(r, o)
	if err != nil {
		return nil, err
	}
	p := &plan{o: o, r: r, bt: bt, nodes: nodes}
	if err := p.locate(); err != nil {
		return nil, err
	}
	if err := preflight(r, p.o.Network, p.tftp, p.o.Media == ""); err != nil {
		return nil, err
	}
	// Probed before any server starts, so that a fallback to TCG, or a
	// KRGIMAGE_QEMU_ACCEL that names no accelerator, is said first.
	if _, err := p.o.Accel.Accelerator(p.o.Log); err != nil {
		return nil, err
	}
	p.work = p.layout().BootTest()
	if err := fsutil.RemoveAll(p.work); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.work, 0o755); err != nil {
		return nil, err
	}
	// The snapshot manifest: content, modes, owners, xattrs, mtimes.
	if r.NFSRoot.Mode == "ro" {
		if p.before, err = snapshot.TreeManifest(ctx, p.root, 0); err != nil {
			return nil, fmt.Errorf("listing the root before the boot: %w", err)
		}
	}
	return p, nil
}

// layout is the build's: the image root is found through OUT/rootfs,
// which links to outputs.rootfs when the recipe puts it there.
func (p *plan) layout() layout.Layout { return layout.New(p.o.Out, p.r) }

// locate finds the build's image root and TFTP tree, and the boot medium
// and firmware the options name.
func (p *plan) locate() error {
	// The NFS server takes absolute export paths.
	out, err := filepath.Abs(p.o.Out)
	if err != nil {
		return err
	}
	p.o.Out = out
	if p.o.Netboot != "" {
		// nginx and tftpd take absolute roots.
		if p.o.Netboot, err = filepath.Abs(p.o.Netboot); err != nil {
			return err
		}
	}
	if p.root, err = filepath.EvalSymlinks(p.layout().RootfsLink()); err != nil {
		return fmt.Errorf("%w: %s has no rootfs: %v", ErrNotBuilt, out, err)
	}
	p.tftp = filepath.Join(p.netbootDir(), netboot.TFTPRoot(p.r))
	if _, err := os.Stat(filepath.Join(p.tftp, "pxelinux.cfg", "default")); err != nil {
		return fmt.Errorf("%w: %s has no TFTP tree (the recipe's netboot step writes it): %v", ErrNotBuilt, out, err)
	}
	if p.o.Media != "" {
		if _, err := os.Stat(p.o.Media); err != nil {
			return fmt.Errorf("boot medium: %w", err)
		}
	}
	return p.checkFirmware()
}

// netbootDir is the boot server's tree the test serves.
func (p *plan) netbootDir() string {
	if p.o.Netboot != "" {
		return p.o.Netboot
	}
	return p.layout().Netboot()
}

// session is what serve started for the nodes.
type session struct {
	ns    string
	login consoleLogin
	// netdevs are the nodes' QEMU -netdev options, in p.nodes' order.
	netdevs []string
}

// serve starts the boot server in a network namespace of its own: the
// NFS server exporting the image root, with the one-time login's
// /etc/shadow, and in netns mode dhcpd and tftpd on a bridge.
func serve(ctx context.Context, p *plan, c *cleanups) (*session, error) {
	collectStale(p.o.Log)
	ns, err := netns.New(serverNetns)
	if err != nil {
		return nil, fmt.Errorf("making a network namespace: %w", err)
	}
	c.push("deleting the boot test's network namespace", func(context.Context) error { return ns.Delete() })
	// The scratch copies the nodes wrote to (a whole root in rw mode) go
	// once the NFS server, stopped first, no longer serves them.
	c.push("removing the boot test's scratch copy", func(context.Context) error {
		return errors.Join(fsutil.RemoveAll(filepath.Join(p.work, "root")), fsutil.RemoveAll(filepath.Join(p.work, "writable")))
	})
	exports, err := prepareExports(p.r, p.root, p.work)
	if err != nil {
		return nil, err
	}
	s := &session{ns: ns.Name}
	var binds []nfsserver.Bind
	if s.login, binds, err = p.setUpLogin(exports[0].Path, c); err != nil {
		return nil, err
	}
	srv, err := nfsserver.Start(ctx, nfsserver.Options{Dir: filepath.Join(p.work, "nfs"), Netns: ns.Name, Exports: exports, Binds: binds, Log: p.o.Log})
	if srv != nil {
		c.push("stopping the NFS server", func(context.Context) error { return srv.Stop() })
	}
	if err != nil {
		return nil, err
	}
	if s.netdevs, err = p.serveNetwork(ctx, ns, c); err != nil {
		return nil, err
	}
	return s, nil
}

// The prefixes of the boot test's network namespaces: the boot server's,
// and the site DHCP server's beside a dnsmasq proxy.
const (
	serverNetns = "krgboot"
	siteNetns   = "krgboot-site"
)

// collectStale deletes the namespaces of boot tests that were killed
// before they could: each still holds a name and its addresses.
func collectStale(log *slog.Logger) {
	gone, err := netns.Collect(serverNetns, siteNetns)
	if len(gone) > 0 {
		log.Info("deleted network namespaces a killed boot test left", "names", gone)
	}
	if err != nil {
		log.Warn("deleting the network namespaces a killed boot test left", "err", err)
	}
}

// setUpLogin settles who logs in on the consoles, and for a one-time
// password, the /etc/shadow the NFS server binds over the export's.
func (p *plan) setUpLogin(root string, c *cleanups) (consoleLogin, []nfsserver.Bind, error) {
	login, loggingIn := loginFor(p.bt)
	var binds []nfsserver.Bind
	if login.OneTime {
		bind, cleanup, err := oneTimeLogin(root, p.work, login)
		if cleanup != nil {
			c.push("removing the one-time login's scratch file", func(context.Context) error { cleanup(); return nil })
		}
		if err != nil {
			return login, nil, err
		}
		binds = append(binds, bind)
		p.o.Log.Info("logging in with a one-time password the NFS server alone knows", "user", login.User)
	}
	if loggingIn {
		// Whatever a console or server echoed of the password goes.
		c.push("redacting the login password", func(context.Context) error { redact(p.work, login.Password, p.o.Log); return nil })
	}
	return login, binds, nil
}

// serveNetwork gives each node its QEMU network: in netns mode a tap on
// the bridge where the real dhcpd and tftpd serve, else QEMU's own DHCP
// and TFTP posing as the recipe's server.
func (p *plan) serveNetwork(ctx context.Context, ns *netns.Namespace, c *cleanups) ([]string, error) {
	netdevs := make([]string, len(p.nodes))
	if p.o.Network != "netns" {
		cl := p.r.Cluster
		// QEMU's DHCP server knows no option 93: the test knows the
		// firmware and names its loader.
		loader := "pxelinux.0"
		if p.o.uefi() {
			loader = netboot.UEFIBootFile
		}
		netdevs[0] = fmt.Sprintf("user,net=%s,host=%s,dhcpstart=%s,tftp=%s,bootfile=%s", cl.Subnet, cl.Server.IP, p.nodes[0].IP, p.tftp, loader)
		return netdevs, nil
	}
	var site *netns.Namespace
	if netboot.DnsmasqProxy(p.r) {
		var err error
		if site, err = netns.New(siteNetns); err != nil {
			return nil, fmt.Errorf("making the site DHCP server's network namespace: %w", err)
		}
		c.push("deleting the site DHCP server's network namespace", func(context.Context) error { return site.Delete() })
	}
	servers, err := startServerNetwork(ctx, p.r, ns, site, p.work, p.netbootDir(), len(p.nodes))
	c.push("stopping dhcpd and tftpd", func(context.Context) error {
		for _, s := range servers {
			s.stop()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range p.nodes {
		netdevs[i] = fmt.Sprintf("tap,ifname=tap%d,script=no,downscript=no", i)
	}
	return netdevs, nil
}

// boot boots the nodes at once and follows each to its checks.
func boot(ctx context.Context, p *plan, s *session) *Result {
	res := &Result{Recipe: p.r.Name, Network: p.o.Network, Firmware: cmp.Or(p.o.Firmware, FirmwareBIOS), HTTPBoot: p.o.httpBoot(),
		Nodes: make([]NodeResult, len(p.nodes))}
	if p.o.Network == "netns" {
		res.DHCP = p.r.Netboot.DHCP.Server
		if netboot.DnsmasqProxy(p.r) {
			res.DHCP = "dnsmasq-proxy"
		}
	}
	var wg sync.WaitGroup
	for i, n := range p.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Nodes[i] = bootNode(ctx, p.o, p.bt, s.login, n, s.netdevs[i], s.ns, p.work)
		}()
	}
	wg.Wait()
	// The choice is read again, not kept from prepare: after a silent KVM
	// guest it is TCG, and the probe's "a KVM machine ran the BIOS" no
	// longer true. Its error, if any, was prepare's.
	now, _ := p.o.Accel.Accelerator(p.o.Log)
	res.Accel = ranUnder(now, res.Nodes)
	return res
}

// ranUnder is the accelerator the nodes ran under, for the report's top
// level: now, the choice after the boots, when they all agree with it,
// else theirs ("mixed" when they differ), each node named.
func ranUnder(now qemu.Accel, nodes []NodeResult) qemu.Accel {
	var used, each []string
	for _, n := range nodes {
		if n.Accel == "" {
			continue // its QEMU never started
		}
		each = append(each, n.Name+" under "+n.Accel)
		if !slices.Contains(used, n.Accel) {
			used = append(used, n.Accel)
		}
	}
	if len(used) == 0 || len(used) == 1 && used[0] == now.Name {
		return now
	}
	name := "mixed"
	if len(used) == 1 {
		name = used[0]
	}
	return qemu.Accel{Name: name, Why: fmt.Sprintf("%s; later machines run under %s: %s", strings.Join(each, ", "), now.Name, now.Why)}
}

// check gives the verdict, passed when every node did and a read-only
// root came back unchanged, and writes the report, interrupted or not.
func check(ctx context.Context, p *plan, res *Result) (*Result, error) {
	res.Passed = true
	for _, n := range res.Nodes {
		res.Passed = res.Passed && n.Passed
	}
	if ctx.Err() != nil {
		// Interrupted: say so in the output, skip the long root check.
		res.Passed = false
		res.Verdict = verdict(res)
		if err := writeReport(p.work, res); err != nil {
			return res, err
		}
		return res, fmt.Errorf("boot test interrupted: %w", ctx.Err())
	}
	if p.before != nil {
		if err := compareRoot(ctx, p, res); err != nil {
			return nil, err
		}
	}
	res.Verdict = verdict(res)
	if err := writeReport(p.work, res); err != nil {
		return res, err
	}
	if !res.Passed {
		return res, fmt.Errorf("%w: %s", ErrFailed, res.Verdict)
	}
	return res, nil
}

// compareRoot lists the read-only root again and reports the first ten
// differences from its listing before the boot; any fails the test.
func compareRoot(ctx context.Context, p *plan, res *Result) error {
	after, err := snapshot.TreeManifest(ctx, p.root, 0)
	if err != nil {
		return fmt.Errorf("listing the root after the boot: %w", err)
	}
	diffs := snapshot.Compare(p.before, after)
	same := len(diffs) == 0
	res.RootUnchanged = &same
	for i, d := range diffs {
		if i == 10 {
			res.RootChanges = append(res.RootChanges, fmt.Sprintf("and %d more", len(diffs)-i))
			break
		}
		res.RootChanges = append(res.RootChanges, d.String())
	}
	if !same {
		res.Passed = false
		p.o.Log.Error("the read-only root changed during the boot", "changes", strings.Join(res.RootChanges, "; "))
	}
	return nil
}

// pickNodes returns the inventory nodes to boot: with MACs in netns mode,
// the first one otherwise.
func pickNodes(r *recipes.Recipe, o Options) ([]recipes.ResolvedNode, error) {
	all := r.Nodes()
	if len(all) == 0 {
		return nil, errors.New("the recipe's inventory has no node to boot")
	}
	if o.Network != "netns" {
		return all[:1], nil
	}
	var out []recipes.ResolvedNode
	for _, n := range all {
		if len(n.MAC) > 0 && len(out) < o.Nodes {
			out = append(out, n)
		}
	}
	if len(out) < o.Nodes {
		return nil, fmt.Errorf("netns mode boots inventory nodes by MAC: %d wanted, %d have one", o.Nodes, len(out))
	}
	return out, nil
}

// prepareExports exports the image root at the recipe's NFS path, as the
// real server would: read-only for a read-only root, with the writable
// directories from scratch copies, so the build's output is never written
// by the nodes; a read-write root is a scratch copy.
func prepareExports(r *recipes.Recipe, root, work string) ([]nfsserver.Export, error) {
	n := r.NFSRoot
	if n.Mode == "rw" {
		cp := filepath.Join(work, "root")
		if err := copyTree(root, cp); err != nil {
			return nil, err
		}
		return []nfsserver.Export{{Path: cp, Pseudo: n.Path}}, nil
	}
	exports := []nfsserver.Export{{Path: root, Pseudo: n.Path, ReadOnly: true}}
	for i, m := range n.Writable {
		if m.Type != "nfs" {
			continue
		}
		dst := filepath.Join(work, "writable", fmt.Sprintf("%d-%s", i, strings.ReplaceAll(strings.Trim(m.Path, "/"), "/", "-")))
		src := filepath.Join(root, m.Path)
		if _, err := os.Stat(src); err == nil {
			if err := copyTree(src, dst); err != nil {
				return nil, err
			}
		} else if err := os.MkdirAll(dst, 0o755); err != nil {
			return nil, err
		}
		exports = append(exports, nfsserver.Export{Path: dst, Pseudo: m.Source})
	}
	return exports, nil
}

func copyTree(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := exec.Command("cp", "-a", "--reflink=auto", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("copying %s: %v: %s", src, err, out)
	}
	return nil
}

// startServerNetwork builds the seed's server inside the namespace: a
// bridge holding the server's address, a tap per guest, the real ISC dhcpd
// with the generated dhcpd.conf and the real tftpd-hpa serving the
// generated TFTP tree.
func startServerNetwork(ctx context.Context, r *recipes.Recipe, ns, site *netns.Namespace, work, tree string, guests int) ([]*server, error) {
	c := r.Cluster
	prefix := c.Subnet.Bits()
	steps := [][]string{
		{"link", "add", "br0", "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", c.Server.IP, prefix), "dev", "br0"},
		// A bridge whose only ports are taps no QEMU holds yet has no
		// carrier, and Kea opens no socket on an interface not running:
		// a port of a veth pair keeps it up, as a server's wired port is.
		{"link", "add", "carrier0", "type", "veth", "peer", "name", "carrier1"},
		{"link", "set", "carrier0", "master", "br0"},
		{"link", "set", "carrier0", "up"},
		{"link", "set", "carrier1", "up"},
		{"link", "set", "br0", "up"},
	}
	for i := 0; i < guests; i++ {
		tap := fmt.Sprintf("tap%d", i)
		steps = append(steps, []string{"tuntap", "add", "dev", tap, "mode", "tap"}, []string{"link", "set", tap, "master", "br0"}, []string{"link", "set", tap, "up"})
	}
	for _, s := range steps {
		if err := ns.IP(s...); err != nil {
			return nil, err
		}
	}
	dhcp, err := dhcpServer(r, ns, work, tree)
	if err != nil {
		return nil, err
	}
	cmds := []serverCmd{dhcp}
	if r.Netboot.HTTP != nil {
		web, err := webServer(r, ns, work, filepath.Join(tree, netboot.TFTPRoot(r)))
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, web)
	}
	if site != nil {
		siteDHCP, err := siteServer(r, ns, site, work)
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, siteDHCP)
	}
	tftpd, err := run.LookSbin("in.tftpd")
	if err != nil {
		return nil, fmt.Errorf("in.tftpd not found: install tftpd-hpa")
	}
	tftp := filepath.Join(tree, netboot.TFTPRoot(r))
	var servers []*server
	for _, x := range append(cmds, serverCmd{"in.tftpd", ns.Exec(tftpd, "-L", "-u", "root", "-a", c.Server.IP.String()+":69", "-s", tftp)}) {
		s, err := startLogged(x.name, x.argv, filepath.Join(work, x.name+".log"))
		if err != nil {
			for _, s := range servers {
				s.stop()
			}
			return nil, err
		}
		servers = append(servers, s)
	}
	// dhcpd checks its configuration at start: give it a moment to refuse.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return servers, ctx.Err()
	}
	for _, s := range servers {
		if s.exited() {
			return servers, fmt.Errorf("%s exited at start; see %s", s.name, filepath.Join(work, s.name+".log"))
		}
	}
	return servers, nil
}

// preflight finds what a boot test needs before anything starts, naming
// the Debian package of what is missing. Ports cannot be taken: the
// servers listen in a namespace of their own.
func preflight(r *recipes.Recipe, network, tftp string, pxe bool) error {
	var errs []error
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		errs = append(errs, qemu.ErrMissing)
	}
	if err := nfsserver.Check(); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat(filepath.Join(tftp, "pxelinux.0")); err != nil && pxe {
		errs = append(errs, fmt.Errorf("%w: the TFTP tree has no pxelinux.0 (install pxelinux and syslinux-common, then rebuild)", ErrNotBuilt))
	}
	if network == "netns" {
		dhcp, pkg := dhcpTool(r)
		tools := [][2]string{{dhcp, pkg}, {"in.tftpd", "tftpd-hpa"}}
		if r.Netboot.HTTP != nil {
			tools = append(tools, [2]string{"nginx", "nginx-light"})
		}
		for _, x := range tools {
			if _, err := run.LookSbin(x[0]); err != nil {
				errs = append(errs, fmt.Errorf("%s not found: install %s (or use --network user)", x[0], x[1]))
			}
		}
	}
	return errors.Join(errs...)
}

func writeReport(work string, res *Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(work, "result.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(work, "verdict"), []byte(res.Verdict+"\n"), 0o644)
}

// verdict is the one line a person reads first.
func verdict(res *Result) string {
	var parts []string
	for _, n := range res.Nodes {
		if n.Passed && len(n.Checks) > 0 {
			parts = append(parts, fmt.Sprintf("%s: booted as %s and passed %d checks in %.0fs", n.Name, n.Hostname, len(n.Checks), n.Seconds))
		} else if n.Passed {
			parts = append(parts, fmt.Sprintf("%s: %s reached in %.0fs", n.Name, n.Phase, n.Seconds))
		} else {
			parts = append(parts, fmt.Sprintf("%s: FAILED at %s after %.0fs: %s", n.Name, n.Phase, n.Seconds, n.Error))
		}
	}
	word := "PASS"
	if !res.Passed {
		word = "FAIL"
	}
	s := word + " " + strings.Join(parts, "; ")
	if res.RootUnchanged != nil && !*res.RootUnchanged {
		s += "; the read-only root was modified"
	}
	return s
}
