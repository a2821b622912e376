package recipes

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/krgimage/krgimage/internal/debarchive"
)

// ProvisionConfig is the configuration of one provisioning step: its
// recipe schema. Each type's doc comment is its recipe reference, its
// constructor in provisionTypes its defaults, and its validate method what
// can be refused with the recipe's line and column. What the step does
// lives in package provision, one file per type.
type ProvisionConfig interface {
	validate(v *validator, path string)
}

// provisionTypes is the registry a provision entry's key selects from. Each
// constructor returns the step's configuration with its defaults set;
// the recipe's YAML is then decoded over it.
var provisionTypes = map[string]func() ProvisionConfig{
	"root-password":   func() ProvisionConfig { return &RootPassword{} },
	"users":           func() ProvisionConfig { return &Users{} },
	"apt-sources":     func() ProvisionConfig { return &AptSources{Security: true, Update: true, Format: "auto"} },
	"packages":        func() ProvisionConfig { return &Packages{} },
	"hosts":           func() ProvisionConfig { return &Hosts{} },
	"nfsbooted":       func() ProvisionConfig { return &Nfsbooted{Method: "auto"} },
	"mtab":            func() ProvisionConfig { return &Mtab{} },
	"fstab":           func() ProvisionConfig { return &Fstab{Configfs: true} },
	"rcs":             func() ProvisionConfig { return &RcS{} },
	"initramfs-tools": func() ProvisionConfig { return &InitramfsTools{Boot: "nfs", Modules: "netboot"} },
	"locale":          func() ProvisionConfig { return &Locale{LCAll: "C", Bashrc: true} },
	"ssh":             func() ProvisionConfig { return &SSH{HostKeys: "per-node"} },
	"run":             func() ProvisionConfig { return &Run{Shell: "/bin/sh", Chroot: true} },
	"files":           func() ProvisionConfig { return &Files{} },
	"write":           func() ProvisionConfig { return &Write{Mode: "0644", Owner: "root", Group: "root"} },
}

// ProvisionTypes lists the provisioning step types a recipe may use.
func ProvisionTypes() []string {
	out := make([]string, 0, len(provisionTypes))
	for k := range provisionTypes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// NewProvisionConfig returns the default configuration of a provisioning
// step type.
func NewProvisionConfig(typ string) (ProvisionConfig, bool) {
	c, ok := provisionTypes[typ]
	if !ok {
		return nil, false
	}
	return c(), true
}

// ProvisionEntry is one entry of the provision list, written either as a
// bare step name ("- mtab") or as a mapping with the step name as its only
// key ("- users: [...]").
type ProvisionEntry struct {
	Type   string
	Config ProvisionConfig
	Pos    Pos
	// Path locates the entry in the recipe, e.g. provision[2].
	Path string
}

func (s *ProvisionEntry) decodeNode(d *decoder, n ast.Node, path string) {
	s.Pos = posOf(n)
	s.Path = path
	var value ast.Node
	switch t := n.(type) {
	case *ast.StringNode:
		s.Type = t.Value
	case *ast.MappingNode:
		if len(t.Values) != 1 {
			d.errAt(n, path, ErrType, "a provision entry has exactly one key, the step type (found %d)", len(t.Values))
			return
		}
		s.Type = t.Values[0].Key.GetToken().Value
		value = t.Values[0].Value
	default:
		d.errAt(n, path, ErrType, "expected a step name or a mapping with one step, got %s", kindName(n))
		return
	}
	c, ok := NewProvisionConfig(s.Type)
	if !ok {
		d.errAt(n, path, ErrUnknownKey, "unknown step type %q%s (allowed: %s)", s.Type, suggest(s.Type, ProvisionTypes()), strings.Join(ProvisionTypes(), ", "))
		return
	}
	s.Config = c
	if value != nil {
		d.decode(value, reflect.ValueOf(c).Elem(), path+"."+s.Type, fieldTags{}, 1)
	}
}

// MarshalYAML writes the entry back in its mapping form.
func (s ProvisionEntry) MarshalYAML() (any, error) {
	return map[string]any{s.Type: s.Config}, nil
}

// RootPassword sets root's password in the image. Give exactly one of:
//
//   - root-password: {hash: '$6$...'}       # a crypt(3) hash
//   - root-password: {file: root.hash}      # a file holding the hash
//   - root-password: {env: ROOT_HASH}       # an environment variable
//   - root-password: {lock: true}           # no password login for root
//
// A plain-text password is refused, and the hash is never logged.
type RootPassword struct {
	Hash Secret `yaml:"hash,omitempty"`
	File string `yaml:"file,omitempty"`
	Env  string `yaml:"env,omitempty"`
	Lock bool   `yaml:"lock,omitempty"`
}

// The locked forms (! or * and what follows) hold no ':' or space: the
// hash is a field of /etc/shadow, given to chpasswd -e as NAME:HASH.
var cryptRE = regexp.MustCompile(`^(\$[0-9a-z]+\$[./0-9A-Za-z$=,-]+|[!*][!-9;-~]*)$`)

// ValidHash reports whether s looks like a crypt(3) hash (or a locked
// "!"/"*" entry) rather than a password typed in the wrong place.
func ValidHash(s string) bool { return cryptRE.MatchString(s) }

func (p *RootPassword) validate(v *validator, keyPath string) {
	n := 0
	for _, set := range []bool{p.Hash != "", p.File != "", p.Env != "", p.Lock} {
		if set {
			n++
		}
	}
	if n != 1 {
		v.errorf(keyPath, ErrConflict, "give exactly one of hash, file, env or lock: true")
	}
	if p.Hash != "" && !ValidHash(p.Hash.Reveal()) {
		v.errorf(keyPath+".hash", ErrInvalid, "not a crypt(3) hash (such as $6$... or $y$..., made with mkpasswd); plain-text passwords are refused")
	}
	if p.Env != "" && !validVarName(p.Env) {
		v.errorf(keyPath+".env", ErrInvalid, "invalid variable name %q", p.Env)
	}
}

// Users creates the seed's "default user to be used during program
// executions on the nodes", and any others:
//
//   - users:
//   - name: krg
//     uid: 1000
//     groups: [sudo]
//     password_hash: '$6$...'
//     ssh_keys: ["ssh-ed25519 AAAA... admin@server"]
//
// Defaults: shell /bin/bash, home /home/NAME, a primary group named like
// the user, uid and gid chosen by the image when 0.
type Users struct {
	Users []User `yaml:"users"`
}

func (*Users) shorthandField() string { return "users" }

func (u *Users) validate(v *validator, keyPath string) {
	if len(u.Users) == 0 {
		v.errorf(keyPath, ErrMissing, "list at least one user")
	}
	for i, user := range u.Users {
		p := fmt.Sprintf("%s[%d]", keyPath, i)
		if user.Name == "" {
			v.errorf(p, ErrMissing, "a user needs a name")
		}
		n := 0
		for _, set := range []bool{user.PasswordHash != "", user.PasswordFile != "", user.PasswordEnv != ""} {
			if set {
				n++
			}
		}
		if n > 1 {
			v.errorf(p, ErrConflict, "give at most one of password_hash, password_file and password_env")
		}
		if user.PasswordHash != "" && !ValidHash(user.PasswordHash.Reveal()) {
			v.errorf(p+".password_hash", ErrInvalid, "not a crypt(3) hash (such as $6$... or $y$..., made with mkpasswd); plain-text passwords are refused")
		}
		if user.PasswordEnv != "" && !validVarName(user.PasswordEnv) {
			v.errorf(p+".password_env", ErrInvalid, "invalid variable name %q", user.PasswordEnv)
		}
		for j, k := range user.SSHKeys {
			if f := strings.Fields(k); len(f) < 2 {
				v.errorf(fmt.Sprintf("%s.ssh_keys[%d]", p, j), ErrInvalid, "not an authorized_keys line (TYPE KEY [COMMENT])")
			}
		}
	}
}

// User is one account.
type User struct {
	Name         string   `yaml:"name" check:"username"`
	UID          int      `yaml:"uid,omitempty" check:"nonnegative"`
	GID          int      `yaml:"gid,omitempty" check:"nonnegative"`
	Group        string   `yaml:"group,omitempty" check:"username"`
	Groups       []string `yaml:"groups,omitempty" check:"username"`
	Shell        string   `yaml:"shell" check:"confpath"`
	Home         string   `yaml:"home,omitempty" check:"confpath"`
	Comment      string   `yaml:"comment,omitempty" check:"gecos"`
	System       bool     `yaml:"system,omitempty"`
	PasswordHash Secret   `yaml:"password_hash,omitempty"`
	PasswordFile string   `yaml:"password_file,omitempty"`
	PasswordEnv  string   `yaml:"password_env,omitempty"`
	SSHKeys      []string `yaml:"ssh_keys,omitempty"`
	SSHKeysFile  string   `yaml:"ssh_keys_file,omitempty"`
}

func (u *User) setDefaults() { u.Shell = "/bin/bash" }

// AptSources writes the image's /etc/apt/sources.list and runs apt-get
// update. Without sources, it writes the build's mirror for the suite and
// components and, when security is true, the security archive (lenny's
// "SUITE/updates", later "SUITE-security"):
//
//   - apt-sources:
//     sources:
//   - deb http://MIRROR/debian lenny main non-free contrib
//   - deb http://MIRROR/debian-security lenny/updates main contrib
//
// format is one-line (sources.list, the only one lenny reads), deb822
// (sources.list.d/debian.sources) or auto (by suite).
type AptSources struct {
	Sources        []string `yaml:"sources,omitempty"`
	Security       bool     `yaml:"security"`
	SecurityMirror string   `yaml:"security_mirror,omitempty" check:"url"`
	Update         bool     `yaml:"update"`
	Format         string   `yaml:"format" enum:"auto,one-line,deb822"`
}

func (*AptSources) shorthandField() string { return "sources" }

func (a *AptSources) validate(v *validator, keyPath string) {
	for i, s := range a.Sources {
		if err := checkSourceLine(s); err != nil {
			v.errorf(fmt.Sprintf("%s.sources[%d]", keyPath, i), ErrInvalid, "%v", err)
		}
	}
	if a.Format == "deb822" && Legacy(v.r.Suite) {
		v.errorf(keyPath+".format", ErrConflict, "%s's APT reads only the one-line format", v.r.Suite)
	}
}

// checkSourceLine reads s as provisioning will, so that what passes
// here is what the step writes and keys.
func checkSourceLine(s string) error {
	if _, err := debarchive.ParseLine(s); err != nil {
		return fmt.Errorf("expected a sources.list line: deb [OPTION=VALUE ...] URI SUITE [COMPONENT...], got %q: %w", s, err)
	}
	return nil
}

// Packages installs packages with apt-get inside the image, without
// recommended packages unless recommends is true:
//
//   - packages: [dhcp3-common, nfs-common, nfsbooted, openssh-server]
type Packages struct {
	Install    []string `yaml:"install" check:"package"`
	Recommends bool     `yaml:"recommends,omitempty"`
}

func (*Packages) shorthandField() string { return "install" }

func (p *Packages) validate(v *validator, keyPath string) {
	if len(p.Install) == 0 {
		v.errorf(keyPath, ErrMissing, "list at least one package to install")
	}
}

// Hosts writes /etc/hosts from the cluster inventory: localhost, the
// server and every node, each with its FQDN and short name, plus extra
// entries. /etc/hostname is emptied so that each node takes its name from
// DHCP at boot, unless hostname fixes one.
type Hosts struct {
	Extra    []HostEntry `yaml:"extra,omitempty"`
	Hostname string      `yaml:"hostname,omitempty" check:"hostname"`
}

func (h *Hosts) validate(v *validator, keyPath string) {
	for i, e := range h.Extra {
		p := fmt.Sprintf("%s.extra[%d]", keyPath, i)
		if !e.IP.IsValid() {
			v.errorf(p, ErrMissing, "a hosts entry needs an ip")
		}
		if len(e.Names) == 0 {
			v.errorf(p, ErrMissing, "a hosts entry needs names")
		}
		for j, n := range e.Names {
			if !domainRE.MatchString(n) {
				v.errorf(fmt.Sprintf("%s.names[%d]", p, j), ErrInvalid, "invalid host name %q", n)
			}
		}
	}
}

// HostEntry is one extra /etc/hosts line.
type HostEntry struct {
	IP    Addr     `yaml:"ip"`
	Names []string `yaml:"names" check:"domain"`
}

// Nfsbooted gives every node sharing the root its own host name (from DHCP
// or reverse DNS) and the writable areas a read-only root needs. method
// package installs lenny's nfsbooted package; native does the same with
// the suite's own means; auto picks by suite.
type Nfsbooted struct {
	Method string `yaml:"method" enum:"auto,package,native"`
}

func (n *Nfsbooted) validate(v *validator, keyPath string) {
	if n.Method == "package" && !Legacy(v.r.Suite) {
		v.errorf(keyPath+".method", ErrConflict, "the nfsbooted package does not exist after lenny; use method: native or auto")
	}
}

// Mtab makes /etc/mtab a symbolic link to /proc/mounts. It has no keys.
type Mtab struct{}

// Fstab writes the seed's /etc/fstab for the recipe's nfsroot mode: for a
// read-only root, proc, sysfs, configfs, the writable NFS mounts and the
// tmpfs mounts; for a read-write root, the minimal fstab.
//
//   - fstab: {swap: /dev/hda, options: {/var: "rw,hard,nolock,noatime"}}
type Fstab struct {
	// Swap is a swap device line to add (the seed's /dev/hda).
	Swap string `yaml:"swap,omitempty" check:"confpath"`
	// Configfs mounts configfs on /config (Kerrighed uses it).
	Configfs bool `yaml:"configfs"`
	// Options overrides the mount options of a mount point, written as
	// fstab has them (rw,hard,nolock); "" is fstab's defaults.
	Options map[string]string `yaml:"options,omitempty" check:"options"`
	// Extra lines appended verbatim.
	Extra []string `yaml:"extra,omitempty"`
}

func (f *Fstab) validate(v *validator, keyPath string) {
	for mp := range f.Options {
		if !strings.HasPrefix(mp, "/") {
			v.errorf(keyPath+".options."+mp, ErrInvalid, "mount point %q must be absolute", mp)
		}
	}
}

func (*Mtab) validate(*validator, string) {}

// RcS makes lenny's boot scripts really mount the NFS filesystems
// (ASYNCMOUNTNFS=no in /etc/default/rcS). On systemd suites it does
// nothing, and the plan says so.
type RcS struct{}

// InitramfsTools configures /etc/initramfs-tools/initramfs.conf for a
// network boot (BOOT=nfs, MODULES=netboot) in images that use
// initramfs-tools.
type InitramfsTools struct {
	Boot    string `yaml:"boot" enum:"nfs,local"`
	Modules string `yaml:"modules" enum:"most,dep,netboot,list"`
	Device  string `yaml:"device,omitempty" check:"arg"`
}

func (*InitramfsTools) validate(*validator, string) {}

func (*RcS) validate(*validator, string) {}

// Locale follows the seed's advice to export LC_ALL=C in root's .bashrc
// (bashrc: false skips it), and optionally generates a locale:
//
//   - locale: {lc_all: C, generate: en_US.UTF-8}
type Locale struct {
	LCAll    string `yaml:"lc_all" check:"locale"`
	Bashrc   bool   `yaml:"bashrc"`
	Generate string `yaml:"generate,omitempty" check:"locale"`
}

func (l *Locale) validate(v *validator, keyPath string) {
	if l.LCAll == "" && l.Bashrc {
		v.errorf(keyPath+".lc_all", ErrMissing, "lc_all is empty; set bashrc: false to skip .bashrc")
	}
}

// SSH sets up openssh-server for a shared root. host_keys per-node (the
// default) removes the image's host keys and has each node generate its
// own at boot, since nodes sharing one root must not share a host key;
// fixed keeps the image's keys for every node.
type SSH struct {
	HostKeys        string `yaml:"host_keys" enum:"per-node,fixed"`
	PermitRootLogin string `yaml:"permit_root_login,omitempty" enum:"yes,no,prohibit-password"`
}

func (*SSH) validate(*validator, string) {}

// Run runs a shell script inside the image (or, with chroot: false, on the
// host with ROOT set to the image root). The script is not subject to
// ${VAR} expansion; pass recipe values through env:
//
//   - run:
//     env: {CLUSTER: "${CLUSTER}"}
//     script: |
//     echo "$CLUSTER" > /etc/cluster-name
type Run struct {
	Script  string            `yaml:"script,omitempty" expand:"no" text:"multiline"`
	File    string            `yaml:"file,omitempty"`
	Env     map[string]string `yaml:"env,omitempty" text:"multiline"`
	Shell   string            `yaml:"shell" check:"abspath"`
	Timeout Duration          `yaml:"timeout,omitempty"`
	Chroot  bool              `yaml:"chroot"`
}

func (r *Run) validate(v *validator, keyPath string) {
	if (r.Script == "") == (r.File == "") {
		v.errorf(keyPath, ErrConflict, "give exactly one of script and file")
	}
	for k := range r.Env {
		if !validVarName(k) {
			v.errorf(keyPath+".env."+k, ErrInvalid, "invalid variable name %q", k)
		}
	}
}

// Files copies files or directories from the recipe's directory into the
// image:
//
//   - files:
//   - {src: motd, dst: /etc/motd, mode: "0644"}
type Files struct {
	Files []FileSpec `yaml:"files"`
}

func (*Files) shorthandField() string { return "files" }

func (f *Files) validate(v *validator, keyPath string) {
	if len(f.Files) == 0 {
		v.errorf(keyPath, ErrMissing, "list at least one file")
	}
	for i, s := range f.Files {
		p := fmt.Sprintf("%s[%d]", keyPath, i)
		if s.Src == "" {
			v.errorf(p, ErrMissing, "a file needs src")
		}
		if s.Dst == "" {
			v.errorf(p, ErrMissing, "a file needs dst")
		}
	}
}

// FileSpec is one copy.
type FileSpec struct {
	Src   string `yaml:"src"`
	Dst   string `yaml:"dst" check:"abspath"`
	Mode  string `yaml:"mode,omitempty" check:"mode"`
	Owner string `yaml:"owner" check:"owner"`
	Group string `yaml:"group" check:"owner"`
}

func (f *FileSpec) setDefaults() { f.Owner, f.Group = "root", "root" }

// Write writes a file with inline content (not subject to ${VAR}
// expansion):
//
//   - write: {path: /etc/motd, content: "Kerrighed node\n"}
type Write struct {
	Path    string `yaml:"path" check:"abspath"`
	Content string `yaml:"content" expand:"no" text:"multiline"`
	Mode    string `yaml:"mode" check:"mode"`
	Owner   string `yaml:"owner" check:"owner"`
	Group   string `yaml:"group" check:"owner"`
}

func (w *Write) validate(v *validator, keyPath string) {
	if w.Path == "" {
		v.errorf(keyPath, ErrMissing, "write needs a path")
	}
}

// Secret is a value that must not appear in logs or printed recipes.
type Secret string

// MarshalText hides the value.
func (s Secret) MarshalText() ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return []byte("<redacted>"), nil
}

// UnmarshalText stores the value.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// String hides the value from fmt and slog.
func (s Secret) String() string { return "<redacted>" }

// Reveal returns the value, for the one place that writes it.
func (s Secret) Reveal() string { return string(s) }
