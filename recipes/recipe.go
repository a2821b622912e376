package recipes

import (
	"path/filepath"
	"slices"
	"time"
)

// Recipe describes one node image: how its root filesystem is bootstrapped
// and provisioned, the cluster it serves, how nodes mount it over NFS and
// boot it over PXE, and what the build writes out.
//
// Every key is optional except where noted; defaults follow the seed
// document (a Debian lenny amd64 NFS root for a Kerrighed cluster).
type Recipe struct {
	// Name identifies the image in outputs and logs; defaults to the
	// recipe's file name without extension.
	Name        string `yaml:"name" check:"name"`
	Description string `yaml:"description,omitempty"`
	// Suite is the Debian release to bootstrap (lenny by default).
	Suite string `yaml:"suite"`
	// Architecture is the Debian architecture of the image (amd64).
	Architecture string `yaml:"architecture" enum:"amd64,i386,arm64,armhf,armel,ppc64el,s390x,mips64el,riscv64,powerpc,ia64,alpha,hppa,sparc,mips,mipsel"`
	// Variant selects the base package set: important (debootstrap's
	// default: Priority required and important), minbase (required and
	// apt only) or buildd (minbase plus build-essential).
	Variant string `yaml:"variant" enum:"important,minbase,buildd"`
	// Mirror is the Debian mirror URL. Left empty, krgimage uses
	// KRGIMAGE_MIRROR or the host's own APT configuration.
	Mirror string `yaml:"mirror,omitempty" check:"url"`
	// Components of the archive (main).
	Components []string `yaml:"components"`
	// Keyring verifies the Release file (a path; relative paths are
	// relative to the recipe). Empty means debootstrap's default keyring.
	Keyring string `yaml:"keyring,omitempty"`
	// Insecure skips signature checks. It must be spelt out: krgimage never
	// falls back to an unverified mirror on its own.
	Insecure bool `yaml:"insecure,omitempty"`
	// Archived marks a suite that lives on Debian's archive mirror, whose
	// signing keys have expired (lenny): expired keys are then accepted.
	Archived bool `yaml:"archived,omitempty"`

	// PublicVariables names the recipe variables, and the run steps' env
	// entries, whose values plan and build.json may show. Every other
	// one is shown by name only, and its value masked wherever it was
	// expanded (Redactor): a value given with --set or the environment
	// may be a credential.
	PublicVariables []string `yaml:"public_variables,omitempty"`

	Bootstrap Bootstrap        `yaml:"bootstrap"`
	Provision []ProvisionEntry `yaml:"provision,omitempty"`
	Cluster   *Cluster         `yaml:"cluster,omitempty"`
	NFSRoot   *NFSRoot         `yaml:"nfsroot,omitempty"`
	Kernel    *Kernel          `yaml:"kernel,omitempty"`
	Initramfs *Initramfs       `yaml:"initramfs,omitempty"`
	Netboot   *Netboot         `yaml:"netboot,omitempty"`
	BootTest  *BootTest        `yaml:"boot_test,omitempty"`
	Outputs   Outputs          `yaml:"outputs"`

	// File is the path the recipe was loaded from ("" for embedded
	// recipes, which carry their name in Source instead).
	File string `yaml:"-"`
	// Source names the recipe in messages: its path, or embedded:NAME.
	Source string `yaml:"-"`
	// Raw holds the recipe bytes as read, before variables were expanded.
	Raw []byte `yaml:"-"`
	// Vars holds the variables the recipe used and their values, from
	// --set or the environment (defaults left out), except those that
	// went into secret fields (passwords, hashes).
	Vars map[string]string `yaml:"-"`
	// secretVars are the variables that went into secret fields, kept
	// only so that Redactor can mask them.
	secretVars map[string]string

	pos positions
}

// Public reports whether the recipe lets plan and build.json show the
// value of the variable or run-step env entry name.
func (r *Recipe) Public(name string) bool { return slices.Contains(r.PublicVariables, name) }

// Dir is the directory relative paths in the recipe are resolved against.
func (r *Recipe) Dir() string {
	if r.File == "" {
		return "."
	}
	return filepath.Dir(r.File)
}

// Path resolves p, a path written in the recipe, against the recipe's
// directory.
func (r *Recipe) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.Dir(), p)
}

// Bootstrap configures the creation of the base system.
type Bootstrap struct {
	// Method is the bootstrapper: native (the default) is krgimage's own,
	// which installs the packages debootstrap would, several times
	// faster, checks every download against the signed Release, keeps
	// packages in a cache shared by builds (--cache-dir) and honours a
	// lockfile; debootstrap runs the real debootstrap (and is what foreign
	// bootstrapping uses).
	Method string `yaml:"method" enum:"native,debootstrap"`
	// Include adds packages to the base system (debootstrap --include).
	Include []string `yaml:"include,omitempty" check:"package"`
	// Exclude removes packages from it (debootstrap --exclude). As with
	// debootstrap, a package another one depends on is kept.
	Exclude []string `yaml:"exclude,omitempty" check:"package"`
	// Foreign bootstraps an architecture the host cannot run natively:
	// debootstrap --foreign, then the second stage under qemu-user-static.
	Foreign bool `yaml:"foreign,omitempty"`
	// MergedUsr chooses the /usr layout: auto (what the suite expects),
	// yes or no.
	MergedUsr string `yaml:"merged_usr" enum:"auto,yes,no"`
	// Lockfile pins the native method to exact package versions and
	// checksums; krgimage lock writes it. Relative to the recipe; by
	// default the recipe's file name with the extension .lock, used when
	// that file exists.
	Lockfile string `yaml:"lockfile,omitempty"`
}

// Cluster is the node inventory and the network it lives on, shared by the
// hosts file, the DHCP configuration and the boot test.
type Cluster struct {
	// Domain is the cluster's DNS domain (mycluster.home in the seed).
	Domain string `yaml:"domain,omitempty" check:"domain"`
	// Server is the machine serving DHCP, TFTP and NFS.
	Server Server `yaml:"server"`
	// Subnet is the nodes' network in CIDR form, e.g. 10.11.12.0/24.
	Subnet Prefix `yaml:"subnet"`
	// Gateway is the default router given to nodes (optional).
	Gateway Addr `yaml:"gateway,omitempty"`
	// Broadcast defaults to the subnet's broadcast address.
	Broadcast Addr `yaml:"broadcast,omitempty"`
	// DNS and NTP servers handed out by DHCP.
	DNS []Addr `yaml:"dns,omitempty"`
	NTP []Addr `yaml:"ntp,omitempty"`
	// DynamicRange is the DHCP pool for machines not in the inventory.
	DynamicRange *AddrRange `yaml:"dynamic_range,omitempty"`
	// Nodes lists nodes one by one.
	Nodes []Node `yaml:"nodes,omitempty"`
	// NodeRanges describes numbered nodes: prefix, count, first address.
	NodeRanges []NodeRange `yaml:"node_ranges,omitempty"`
}

// Server identifies the boot server.
type Server struct {
	Name string `yaml:"name" check:"hostname"`
	IP   Addr   `yaml:"ip"`
}

// AddrRange is an inclusive range of IPv4 addresses.
type AddrRange struct {
	Start Addr `yaml:"start"`
	End   Addr `yaml:"end"`
}

// Node is one cluster node.
type Node struct {
	Name string `yaml:"name" check:"hostname"`
	IP   Addr   `yaml:"ip"`
	MAC  MAC    `yaml:"mac,omitempty"`
	// Append adds kernel arguments for this node only.
	Append []string `yaml:"append,omitempty" check:"arg"`
	// Kernel and Initrd override the image's for this node (paths inside
	// the image).
	Kernel string `yaml:"kernel,omitempty" check:"confpath"`
	Initrd string `yaml:"initrd,omitempty" check:"confpath"`
}

// NodeRange describes Count nodes named Prefix+N (N from Start) with
// consecutive addresses from FirstIP and, when FirstMAC is set,
// consecutive MAC addresses.
type NodeRange struct {
	Prefix   string `yaml:"prefix" check:"hostname"`
	Count    int    `yaml:"count" check:"positive"`
	Start    int    `yaml:"start" check:"nonnegative"`
	FirstIP  Addr   `yaml:"first_ip"`
	FirstMAC MAC    `yaml:"first_mac,omitempty"`
	// Width zero-pads the number (2 gives node01).
	Width  int      `yaml:"width,omitempty" check:"nonnegative"`
	Append []string `yaml:"append,omitempty" check:"arg"`
}

// NFSRoot says how nodes mount the image.
type NFSRoot struct {
	// Server is the NFS server's address (the cluster server by default).
	Server Addr `yaml:"server,omitempty"`
	// Path is the exported directory on the server (/NFSROOT/kerrighed).
	Path string `yaml:"path" check:"confpath"`
	// Mode is ro (shared read-only root with writable mounts, the default)
	// or rw (a read-write root, simpler but with less control).
	Mode string `yaml:"mode" enum:"ro,rw"`
	// Version is the NFS protocol version used for the root (3 or 4).
	Version int `yaml:"version" enum:"3,4"`
	// Options are extra mount options for the root.
	Options []string `yaml:"options,omitempty" check:"option"`
	// Writable lists the read-write mounts of a read-only root; the
	// default is the seed's /var, /tmp and /root over NFS.
	Writable []Mount `yaml:"writable,omitempty"`
	// Tmpfs lists directories mounted as tmpfs on every node (/var/run).
	Tmpfs []string `yaml:"tmpfs,omitempty" check:"confpath"`
}

// Mount is one writable mount of a read-only root.
type Mount struct {
	// Path is the mount point in the image.
	Path string `yaml:"path" check:"confpath"`
	// Type is nfs (a directory exported read-write) or tmpfs.
	Type string `yaml:"type" enum:"nfs,tmpfs"`
	// Source is the exported directory for nfs mounts; defaults to the
	// same path under the NFS root's export.
	Source string `yaml:"source,omitempty" check:"confpath"`
	// Options default to the seed's rw,hard,nolock.
	Options []string `yaml:"options,omitempty" check:"option"`
}

// Kernel says where the nodes' kernel comes from: a Debian package, or a
// source tree built and installed with DESTDIR (the Kerrighed way).
type Kernel struct {
	// Package installs a packaged kernel in the image (linux-image-amd64).
	Package string `yaml:"package,omitempty" check:"package"`
	// Source is a tarball (path or URL) or a directory of kernel sources.
	Source string `yaml:"source,omitempty"`
	// SHA256 of Source, required when Source is a URL.
	SHA256 string `yaml:"sha256,omitempty" check:"sha256"`
	// Linux is the Linux tree Kerrighed patches (--with-kernel).
	Linux string `yaml:"linux,omitempty"`
	// Config is a kernel .config file to build with.
	Config string `yaml:"config,omitempty"`
	// Configure holds extra ./configure arguments.
	Configure []string `yaml:"configure,omitempty"`
	// Targets are the make targets run in order (Kerrighed's sequence:
	// kernel, all, kernel-install, install).
	Targets []string `yaml:"targets,omitempty"`
	// Jobs is make's -j (the number of CPUs by default).
	Jobs int `yaml:"jobs,omitempty" check:"nonnegative"`
	// Mode is host (build on the host, install with DESTDIR, the default)
	// or chroot (build inside the image).
	Mode string `yaml:"mode,omitempty" enum:"host,chroot"`
	// Env adds variables to the build's environment.
	Env map[string]string `yaml:"env,omitempty" text:"multiline"`
	// Version picks the kernel when the image holds several.
	Version string `yaml:"version,omitempty" check:"arg"`
}

// Initramfs configures the nodes' initial ramdisk.
type Initramfs struct {
	// Generator is native (krgimage's own, the default) or initramfs-tools
	// (mkinitramfs inside the image with BOOT=nfs).
	Generator string `yaml:"generator" enum:"native,initramfs-tools"`
	// Compression of the archive.
	Compression string `yaml:"compression" enum:"gzip,xz,zstd,lzma,none"`
	// Output is the initramfs path inside the image; defaults to
	// /boot/initrd.img-VERSION.
	Output string `yaml:"output,omitempty" check:"confpath"`
	// NICs are the network driver modules to include (a list of common
	// server and virtual NICs by default).
	NICs []string `yaml:"nics,omitempty" check:"module"`
	// Modules are extra kernel modules to include.
	Modules []string `yaml:"modules,omitempty" check:"module"`
	// Busybox is the busybox binary to use when the image has none.
	Busybox string `yaml:"busybox,omitempty"`
	// Files are extra files copied into the initramfs.
	Files []FileCopy `yaml:"files,omitempty"`
}

// FileCopy copies Src (on the build host, relative to the recipe) to Dst.
type FileCopy struct {
	Src string `yaml:"src"`
	Dst string `yaml:"dst" check:"abspath"`
}

// Netboot configures the boot server: DHCP, TFTP with pxelinux, NFS
// exports, and optional boot media.
type Netboot struct {
	DHCP    DHCP    `yaml:"dhcp"`
	TFTP    TFTP    `yaml:"tftp"`
	PXE     PXE     `yaml:"pxelinux"`
	Exports Exports `yaml:"exports"`
	Media   *Media  `yaml:"media,omitempty"`
	// HTTP, when set, serves the kernel and initramfs over HTTP: TFTP
	// carries only the first stage, pxelinux.0 is then syslinux's
	// lpxelinux.0 (pxelinux with an HTTP client, syslinux 5 and newer),
	// and an nginx site serving the TFTP tree is written beside the
	// other files.
	HTTP *HTTP `yaml:"http,omitempty"`
	// UEFI, when set, serves x86-64 UEFI clients too (DHCP option 93
	// says which a client is): Debian's Microsoft-signed shim and
	// Debian-signed GRUB network image, which boot with Secure Boot on,
	// and a GRUB configuration with pxelinux.cfg's entries. BIOS
	// clients keep pxelinux.
	UEFI *UEFI `yaml:"uefi,omitempty"`
}

// UEFI configures the UEFI loaders.
type UEFI struct {
	// Loaders says whose shim and GRUB to serve, as pxelinux.syslinux
	// does for pxelinux: the host's (packages shim-signed and
	// grub-efi-amd64-signed) or the image's.
	Loaders string `yaml:"loaders" enum:"host,image"`
}

// SetDefaults serves the host's loaders.
func (u *UEFI) SetDefaults() { u.Loaders = "host" }

// WithNetboot is a copy of r whose netboot section change altered; r and
// its section stay as they were, for a run that serves the build
// otherwise than the recipe says (another DHCP server, HTTP, a tree
// elsewhere).
func (r *Recipe) WithNetboot(change func(*Netboot)) *Recipe {
	c := *r
	nb := *r.Netboot
	change(&nb)
	c.Netboot = &nb
	return &c
}

// HTTP configures the web server of an HTTP boot.
type HTTP struct {
	// Port nginx listens on, at the cluster server's address (80).
	Port int `yaml:"port" check:"positive"`
}

// SetDefaults gives an http: section its port.
func (h *HTTP) SetDefaults() { h.Port = 80 }

// DHCP configures the generated dhcpd.conf.
type DHCP struct {
	// Server is the DHCP server the configuration is written for: isc
	// (ISC dhcpd, the seed's and the default), kea (ISC Kea's
	// kea-dhcp4) or dnsmasq. Without a cluster.dynamic_range, dnsmasq
	// runs as a proxy beside the site's own DHCP server: it adds only
	// the boot options, and the site's server gives the addresses.
	Server string `yaml:"server" enum:"isc,kea,dnsmasq"`
	// Flavor is dhcp3 (lenny's dhcp3-server) or isc (isc-dhcp-server);
	// auto picks by suite. It applies to server: isc only.
	Flavor string `yaml:"flavor" enum:"auto,dhcp3,isc"`
	// MaxMessageSize is option dhcp-max-message-size (2048); ISC dhcpd
	// only, as is DenyBootp (Kea and dnsmasq answer no BOOTP client
	// unless told to).
	MaxMessageSize int `yaml:"max_message_size" check:"positive"`
	// DenyBootp refuses BOOTP clients (true).
	DenyBootp bool `yaml:"deny_bootp"`
	// HostnamePrefix names dynamic clients PREFIX+last octet (krgnode).
	HostnamePrefix string `yaml:"hostname_prefix" check:"hostname"`
}

// TFTP configures tftpd-hpa.
type TFTP struct {
	// Root is the TFTP directory (/srv/tftp).
	Root string `yaml:"root" check:"confpath"`
	// Form of /etc/default/tftpd-hpa: lenny (RUN_DAEMON/OPTIONS), modern
	// (TFTP_*), or auto by suite.
	Form     string `yaml:"form" enum:"auto,lenny,modern"`
	Address  string `yaml:"address" check:"arg"`
	Username string `yaml:"username" check:"username"`
	Options  string `yaml:"options" check:"words"`
}

// PXE configures pxelinux.
type PXE struct {
	// Syslinux says whose pxelinux.0 to use: the host's or the image's.
	Syslinux string `yaml:"syslinux" enum:"host,image"`
	// Label is the pxelinux label (kerrighed in the seed).
	Label string `yaml:"label" check:"label"`
	// Append adds kernel arguments for every node (session_id=1 ...).
	Append []string `yaml:"append,omitempty" check:"arg"`
	// IPAppend is pxelinux's IPAPPEND (2 passes BOOTIF=).
	IPAppend int `yaml:"ipappend,omitempty" enum:"0,1,2,3"`
	// MACFiles also writes 01-<mac> configuration files.
	MACFiles bool `yaml:"mac_files,omitempty"`
	// Timeout in tenths of a second before the default label boots.
	Timeout int `yaml:"timeout,omitempty" check:"nonnegative"`
}

// Exports configures the NFS exports.
type Exports struct {
	// Clients is who may mount: the cluster subnet by default, or *.
	Clients string `yaml:"clients,omitempty"`
	// Options for the exported root (rw,sync,no_root_squash,
	// no_subtree_check in the seed; ro for a read-only root).
	Options []string `yaml:"options,omitempty" check:"option"`
}

// Media configures boot media for nodes that cannot PXE (krgimage media,
// and the build's media step): an ISO 9660 image, written to the output
// directory, that boots from CD or, through a hybrid MBR, from a USB
// stick. Its boot loaders come from where pxelinux.syslinux says: the
// host's or the image's packages (isolinux and syslinux-common, ipxe,
// grub-efi-amd64-signed). For example:
//
//	netboot:
//	  media: {kind: isolinux, uefi: true}   # writes OUT/NAME.iso
type Media struct {
	// Kind is isolinux (the default: the kernel and initramfs on the
	// medium, booted with the PXE nodes' append line, and a menu entry
	// per node that has its own arguments) or ipxe (iPXE alone, with a
	// script that asks DHCP and boots what the boot server serves, so
	// nodes take every setting from the server).
	Kind string `yaml:"kind" enum:"isolinux,ipxe"`
	// Output is the ISO's file name in the output directory (NAME.iso).
	Output string `yaml:"output"`
	// UEFI adds an EFI system partition with GRUB and the same entries,
	// as the second El Torito entry and, on a USB stick, a partition
	// (isolinux kind, amd64 only).
	UEFI bool `yaml:"uefi,omitempty"`
}

// BootTest configures krgimage boot-test.
type BootTest struct {
	// Network is user (QEMU user-mode networking, no root needed) or netns
	// (real dhcpd, tftpd and NFS in a private network namespace).
	Network string `yaml:"network" enum:"user,netns"`
	// NIC is the emulated network card.
	NIC string `yaml:"nic" enum:"e1000,virtio"`
	// Memory in MiB.
	Memory int `yaml:"memory" check:"positive"`
	// Timeout for the whole boot.
	Timeout Duration `yaml:"timeout"`
	// Success is the console text that proves the boot worked.
	Success string `yaml:"success"`
	// Nodes is how many inventory nodes boot at once (netns mode).
	Nodes int `yaml:"nodes" check:"positive"`
	// Login logs in on the console to run Checks. Without a password (or
	// without login), the boot test logs in as the user (root) with a
	// one-time password that only its NFS server serves, in a copy of the
	// image's /etc/shadow: nothing of it reaches the image or any output.
	Login *Login `yaml:"login,omitempty"`
	// Checks are commands run on the booted node.
	Checks []Check `yaml:"checks,omitempty"`
}

// Login is a console login for boot-test checks.
type Login struct {
	User     string `yaml:"user" check:"username"`
	Password Secret `yaml:"password,omitempty"`
}

// Check is one command run on a booted node. It passes when the command
// exits 0 and, if Expect is set, its output contains Expect.
type Check struct {
	Name   string `yaml:"name"`
	Run    string `yaml:"run"`
	Expect string `yaml:"expect,omitempty"`
}

// Outputs says what a build writes besides the image root.
type Outputs struct {
	// Rootfs places the image root outside the output directory (e.g.
	// /NFSROOT/kerrighed); by default it is OUTPUT/rootfs.
	Rootfs string `yaml:"rootfs,omitempty" check:"abspath"`
	// Snapshot writes a tarball of the finished root into the output
	// directory (the seed's "tar -p" advice).
	Snapshot *SnapshotOutput `yaml:"snapshot,omitempty"`
}

// SnapshotOutput configures the snapshot a build writes.
type SnapshotOutput struct {
	// Path is the file name in the output directory (NAME.tar.zst).
	Path        string `yaml:"path"`
	Compression string `yaml:"compression" enum:"zstd,gzip,xz,none"`
	Level       int    `yaml:"level,omitempty"`
}

// Duration is a time.Duration written as "90s" or "10m".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return errorf("a duration such as 90s or 10m")
	}
	if v <= 0 {
		return errorf("a positive duration")
	}
	d.Duration = v
	return nil
}

// MarshalText renders the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
