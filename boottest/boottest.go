package boottest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/krgimage/krgimage/internal/fsutil"
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
	// Network is user or netns; empty means the recipe's.
	Network string
	// Nodes boots this many inventory nodes (netns); 0 means the recipe's.
	Nodes int
	// Timeout per node; 0 means the recipe's.
	Timeout time.Duration
	// Media boots the nodes from this ISO (krgimage media) instead of
	// PXE: as a CD, or as a USB stick with MediaUSB; the NFS root and
	// the network are the same.
	Media    string
	MediaUSB bool
	// Firmware replaces the BIOS (OVMF.fd: UEFI).
	Firmware string
	Log      *slog.Logger
	Progress *progress.Display
	// Clock is the wall clock (durations in the report).
	Clock func() time.Time
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
	// Accel is the accelerator chosen for the nodes and why (KVM only
	// when a probe machine ran the BIOS under it).
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
const Dir = "boot-test"

// Run boots the build in Out and reports. NFS server, DHCP and TFTP
// servers and QEMU are stopped whatever happens, and the console logs and
// a verdict are left in OUT/boot-test.
func Run(ctx context.Context, o Options) (*Result, error) {
	r := o.Recipe
	bt := r.BootTest
	if bt == nil {
		bt = &recipes.BootTest{Network: "user", NIC: "e1000", Memory: 1024, Success: "login:", Nodes: 1, Timeout: recipes.Duration{Duration: 10 * time.Minute}}
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
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: it runs its servers in a private network namespace, and nfs-ganesha's VFS backend needs CAP_DAC_READ_SEARCH", ErrNeedsRoot)
	}
	if r.NFSRoot == nil || r.Netboot == nil || r.Cluster == nil {
		return nil, fmt.Errorf("%w: the recipe needs nfsroot, cluster and netboot sections to boot nodes", ErrNotBuilt)
	}
	if o.Nodes > 1 && o.Network != "netns" {
		return nil, fmt.Errorf("booting %d nodes at once needs --network netns", o.Nodes)
	}
	nodes, err := pickNodes(r, o)
	if err != nil {
		return nil, err
	}
	// The NFS server takes absolute export paths.
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	o.Out = out
	root, err := filepath.EvalSymlinks(filepath.Join(o.Out, "rootfs"))
	if err != nil {
		return nil, fmt.Errorf("%w: %s has no rootfs: %v", ErrNotBuilt, o.Out, err)
	}
	tftp := filepath.Join(o.Out, "netboot", netboot.TFTPRoot(r))
	if _, err := os.Stat(filepath.Join(tftp, "pxelinux.cfg", "default")); err != nil {
		return nil, fmt.Errorf("%w: %s has no TFTP tree (the recipe's netboot step writes it): %v", ErrNotBuilt, o.Out, err)
	}
	if o.Media != "" {
		if _, err := os.Stat(o.Media); err != nil {
			return nil, fmt.Errorf("boot medium: %w", err)
		}
	}
	if o.Firmware != "" {
		if _, err := os.Stat(o.Firmware); err != nil {
			return nil, fmt.Errorf("firmware: %w (UEFI needs Debian's ovmf package)", err)
		}
	}
	if err := preflight(o.Network, tftp, o.Media == ""); err != nil {
		return nil, err
	}
	// Probed before any server starts, so that a fallback to TCG is said
	// first.
	accel := qemu.Accelerator(o.Log)
	work := filepath.Join(o.Out, Dir)
	if err := fsutil.RemoveAll(work); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}

	// A read-only root must come back from the boot exactly as it went:
	// its snapshot manifest (content, modes, owners, xattrs, mtimes) before
	// and after.
	var before *snapshot.Manifest
	if r.NFSRoot.Mode == "ro" {
		if before, err = snapshot.TreeManifest(ctx, root, 0); err != nil {
			return nil, fmt.Errorf("listing the root before the boot: %w", err)
		}
	}

	ns, err := netns.New("krgboot")
	if err != nil {
		return nil, fmt.Errorf("making a network namespace: %w", err)
	}
	defer ns.Delete()

	// The scratch copies the nodes wrote to (a whole root in rw mode) go
	// once the NFS server, stopped first, no longer serves them.
	defer func() {
		for _, d := range []string{"root", "writable"} {
			if err := fsutil.RemoveAll(filepath.Join(work, d)); err != nil {
				o.Log.Warn("removing the boot test's scratch copy", "err", err)
			}
		}
	}()
	exports, err := prepareExports(r, root, work)
	if err != nil {
		return nil, err
	}
	login, loggingIn := loginFor(bt)
	var binds []nfsserver.Bind
	if login.OneTime {
		bind, cleanup, err := oneTimeLogin(exports[0].Path, work, login)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		binds = append(binds, bind)
		o.Log.Info("logging in with a one-time password the NFS server alone knows", "user", login.User)
	}
	if loggingIn {
		// Whatever a console or server echoed of the password goes.
		defer redact(work, login.Password, o.Log)
	}
	srv, err := nfsserver.Start(ctx, nfsserver.Options{Dir: filepath.Join(work, "nfs"), Netns: ns.Name, Exports: exports, Binds: binds, Log: o.Log})
	if err != nil {
		return nil, err
	}
	defer srv.Stop()

	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	netdevs := make([]string, len(nodes))
	if o.Network == "netns" {
		if servers, err = startServerNetwork(ctx, r, ns, work, filepath.Join(o.Out, "netboot"), len(nodes)); err != nil {
			return nil, err
		}
		for i := range nodes {
			netdevs[i] = fmt.Sprintf("tap,ifname=tap%d,script=no,downscript=no", i)
		}
	} else {
		c := r.Cluster
		netdevs[0] = fmt.Sprintf("user,net=%s,host=%s,dhcpstart=%s,tftp=%s,bootfile=pxelinux.0", c.Subnet, c.Server.IP, nodes[0].IP, tftp)
	}

	res := &Result{Recipe: r.Name, Network: o.Network, Accel: accel, Nodes: make([]NodeResult, len(nodes))}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Nodes[i] = bootNode(ctx, o, bt, login, n, netdevs[i], ns.Name, work)
		}()
	}
	wg.Wait()

	res.Passed = true
	for _, n := range res.Nodes {
		res.Passed = res.Passed && n.Passed
	}
	if ctx.Err() != nil {
		// Interrupted: say so in the output, skip the long root check.
		res.Passed = false
		res.Verdict = verdict(res)
		if err := writeReport(work, res); err != nil {
			return res, err
		}
		return res, fmt.Errorf("boot test interrupted: %w", ctx.Err())
	}
	if before != nil {
		after, err := snapshot.TreeManifest(ctx, root, 0)
		if err != nil {
			return nil, fmt.Errorf("listing the root after the boot: %w", err)
		}
		diffs := snapshot.Compare(before, after)
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
			o.Log.Error("the read-only root changed during the boot", "changes", strings.Join(res.RootChanges, "; "))
		}
	}
	res.Verdict = verdict(res)
	if err := writeReport(work, res); err != nil {
		return res, err
	}
	if !res.Passed {
		return res, fmt.Errorf("%w: %s", ErrFailed, res.Verdict)
	}
	return res, nil
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
func startServerNetwork(ctx context.Context, r *recipes.Recipe, ns *netns.Namespace, work, tree string, guests int) ([]*server, error) {
	c := r.Cluster
	prefix := c.Subnet.Bits()
	steps := [][]string{
		{"link", "add", "br0", "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", c.Server.IP, prefix), "dev", "br0"},
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
	dhcpd, err := run.LookSbin("dhcpd")
	if err != nil {
		return nil, fmt.Errorf("dhcpd not found: install isc-dhcp-server")
	}
	tftpd, err := run.LookSbin("in.tftpd")
	if err != nil {
		return nil, fmt.Errorf("in.tftpd not found: install tftpd-hpa")
	}
	conf := filepath.Join(tree, netboot.DHCPPath(r))
	tftp := filepath.Join(tree, netboot.TFTPRoot(r))
	leases := filepath.Join(work, "dhcpd.leases")
	if err := os.WriteFile(leases, nil, 0o644); err != nil {
		return nil, err
	}
	var servers []*server
	for _, x := range []struct {
		name string
		argv []string
	}{
		{"dhcpd", ns.Exec(dhcpd, "-4", "-f", "-d", "-cf", conf, "-lf", leases, "-pf", filepath.Join(work, "dhcpd.pid"), "br0")},
		{"in.tftpd", ns.Exec(tftpd, "-L", "-u", "root", "-a", c.Server.IP.String()+":69", "-s", tftp)},
	} {
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
func preflight(network, tftp string, pxe bool) error {
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
		for _, x := range [][2]string{{"dhcpd", "isc-dhcp-server"}, {"in.tftpd", "tftpd-hpa"}} {
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
