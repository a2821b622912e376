package chroot

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/krgimage/krgimage/internal/confread"
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

func (h hosts) Apply(_ context.Context, s *Session) error {
	if err := s.WriteFile("/etc/hosts", []byte(HostsFile(h.img.Recipe, h.cfg.Extra)), 0o644, "root", "root"); err != nil {
		return err
	}
	name := ""
	if h.cfg.Hostname != "" {
		name = h.cfg.Hostname + "\n"
	}
	return s.WriteFile("/etc/hostname", []byte(name), 0o644, "root", "root")
}

type mtab struct{}

func (mtab) Describe() []string { return []string{"ln -sf /proc/mounts /etc/mtab"} }
func (mtab) Check() error       { return nil }
func (mtab) Apply(_ context.Context, s *Session) error {
	return s.Symlink("/proc/mounts", "/etc/mtab")
}

// Fstab renders the seed's /etc/fstab for the recipe's NFS root mode.
func Fstab(r *recipes.Recipe, cfg *recipes.Fstab) string {
	n := r.NFSRoot
	var rows [][]string
	add := func(src, mp, typ, opts string) {
		if o, ok := cfg.Options[mp]; ok {
			opts = o
		}
		// getmntent reads octal escapes (\040) in every field: a space or
		// a newline in a value stays inside its field.
		rows = append(rows, []string{quote.Octal(src), quote.Octal(mp), typ, quote.Octal(opts), "0", "0"})
	}
	if cfg.Swap != "" {
		add(cfg.Swap, "none", "swap", "sw")
	}
	add("none", "/proc", "proc", "defaults")
	add("none", "/sys", "sysfs", "defaults")
	if cfg.Configfs {
		add("none", "/config", "configfs", "defaults")
	}
	if n.Mode == "ro" {
		for _, m := range n.Writable {
			opts := strings.Join(m.Options, ",")
			if m.Type == "tmpfs" {
				add("none", m.Path, "tmpfs", opts)
				continue
			}
			if n.Version == 4 && !strings.Contains(opts, "vers=") {
				opts += ",vers=4"
			}
			add(n.Server.String()+":"+m.Source, m.Path, "nfs", opts)
		}
	}
	for _, t := range n.Tmpfs {
		add("none", t, "tmpfs", "defaults")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# /etc/fstab: written by krgimage for a read-%s NFS root (recipe %s).\n", map[string]string{"ro": "only", "rw": "write"}[n.Mode], quote.Plain(r.Name))
	fmt.Fprintf(&b, "# The root itself is mounted by the kernel or initramfs from %s:%s.\n", n.Server, quote.Plain(n.Path))
	b.WriteString("# <file system>\t<mount point>\t<type>\t<options>\t<dump>\t<pass>\n")
	for _, row := range rows {
		b.WriteString(strings.Join(row, "\t"))
		b.WriteByte('\n')
	}
	for _, e := range cfg.Extra {
		b.WriteString(quote.Plain(e) + "\n")
	}
	return b.String()
}

type fstab struct {
	cfg *recipes.Fstab
	img *Image
}

func (f fstab) Describe() []string {
	lines := []string{"write /etc/fstab for a read-" + map[string]string{"ro": "only", "rw": "write"}[f.img.Recipe.NFSRoot.Mode] + " NFS root:"}
	for _, l := range strings.Split(strings.TrimSpace(Fstab(f.img.Recipe, f.cfg)), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, "  "+strings.ReplaceAll(l, "\t", " "))
		}
	}
	return lines
}

func (fstab) Check() error { return nil }

// mountPoints lists the directories fstab mounts on.
func (f fstab) mountPoints() ([]string, error) {
	entries, err := confread.Fstab(Fstab(f.img.Recipe, f.cfg))
	if err != nil {
		return nil, fmt.Errorf("reading back the generated fstab: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Target, "/") {
			out = append(out, e.Target)
		}
	}
	return out, nil
}

func (f fstab) Apply(_ context.Context, s *Session) error {
	if err := s.WriteFile("/etc/fstab", []byte(Fstab(f.img.Recipe, f.cfg)), 0o644, "root", "root"); err != nil {
		return err
	}
	// Mount points must exist on a read-only root: nobody can create them
	// at boot.
	mps, err := f.mountPoints()
	if err != nil {
		return err
	}
	for _, mp := range mps {
		r, err := rel(mp)
		if err != nil {
			return err
		}
		if fi, err := s.FS().Stat(r); err == nil && fi.IsDir() {
			continue
		}
		if err := confine(mp, s.FS().MkdirAll(r, 0o755)); err != nil {
			return fmt.Errorf("creating mount point %s: %w", mp, err)
		}
	}
	return nil
}

// setShellVar sets KEY=value in a shell-style configuration file, replacing
// the first (possibly commented) assignment, or appending one.
func setShellVar(content, key, value string) string {
	re := regexp.MustCompile(`(?m)^[ \t]*#?[ \t]*` + regexp.QuoteMeta(key) + `=.*$`)
	line := key + "=" + quote.Shell(value)
	if loc := re.FindStringIndex(content); loc != nil {
		return content[:loc[0]] + line + content[loc[1]:]
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return content + line + "\n"
}

// SetShellVars sets KEY=value lines in a shell-style configuration file
// of the image (/etc/default/rcS, initramfs.conf), keeping the rest.
func (s *Session) SetShellVars(path string, vars map[string]string) error {
	return editShellVars(s, path, vars)
}

// editShellVars applies setShellVar for each key, in sorted order.
func editShellVars(s *Session, path string, vars map[string]string) error {
	b, err := s.ReadFile(path)
	if err != nil {
		return err
	}
	if b == nil {
		return fmt.Errorf("%w: %s does not exist in the image", ErrMissing, path)
	}
	content := string(b)
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		content = setShellVar(content, k, vars[k])
	}
	return s.WriteFile(path, []byte(content), 0o644, "root", "root")
}

type rcs struct{ img *Image }

func (r rcs) Describe() []string {
	if recipes.Systemd(r.img.Recipe.Suite) {
		return []string{"nothing to do: " + r.img.Recipe.Suite + " boots with systemd, which mounts fstab's NFS filesystems itself (no /etc/default/rcS)"}
	}
	return []string{"set ASYNCMOUNTNFS=no in /etc/default/rcS so NFS mounts really happen at boot"}
}

func (rcs) Check() error { return nil }

func (r rcs) Apply(_ context.Context, s *Session) error {
	if recipes.Systemd(r.img.Recipe.Suite) {
		return nil
	}
	return editShellVars(s, "/etc/default/rcS", map[string]string{"ASYNCMOUNTNFS": "no"})
}

type initramfsTools struct{ cfg *recipes.InitramfsTools }

func (i initramfsTools) vars() map[string]string {
	v := map[string]string{"BOOT": i.cfg.Boot, "MODULES": i.cfg.Modules}
	if i.cfg.Device != "" {
		v["DEVICE"] = i.cfg.Device
	}
	return v
}

func (i initramfsTools) Describe() []string {
	var kv []string
	for k, v := range i.vars() {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return []string{"set " + strings.Join(kv, " ") + " in /etc/initramfs-tools/initramfs.conf (a ramdisk with network support)"}
}

func (initramfsTools) Check() error { return nil }

func (i initramfsTools) Apply(_ context.Context, s *Session) error {
	const conf = "/etc/initramfs-tools/initramfs.conf"
	if !s.Exists(conf) {
		return fmt.Errorf("%w: %s: install initramfs-tools in a packages step before this one", ErrMissing, conf)
	}
	return editShellVars(s, conf, i.vars())
}

type locale struct{ cfg *recipes.Locale }

func (l locale) Describe() []string {
	var out []string
	if l.cfg.Bashrc {
		out = append(out, "add \"export LC_ALL="+l.cfg.LCAll+"\" to /root/.bashrc (the seed's cure for Perl's locale warnings)")
	}
	if l.cfg.Generate != "" {
		out = append(out, "install locales, generate "+l.cfg.Generate+" and make it the default LANG")
	}
	return out
}

func (locale) Check() error { return nil }

func (l locale) Apply(ctx context.Context, s *Session) error {
	if l.cfg.Bashrc {
		b, err := s.ReadFile("/root/.bashrc")
		if err != nil {
			return err
		}
		line := "export LC_ALL=" + quote.Shell(l.cfg.LCAll)
		if !strings.Contains(string(b), "\n"+line+"\n") && !strings.HasPrefix(string(b), line+"\n") {
			content := string(b)
			if content != "" && !strings.HasSuffix(content, "\n") {
				content += "\n"
			}
			content += "# Added by krgimage: keeps Perl quiet about missing locales.\n" + line + "\n"
			if err := s.WriteFile("/root/.bashrc", []byte(content), 0o644, "root", "root"); err != nil {
				return err
			}
		}
	}
	if l.cfg.Generate == "" {
		return nil
	}
	if !s.Exists("/usr/sbin/locale-gen") {
		if err := s.Install(ctx, []string{"locales"}, false); err != nil {
			return err
		}
	}
	b, err := s.ReadFile("/etc/locale.gen")
	if err != nil {
		return err
	}
	charset := "UTF-8"
	if _, cs, ok := strings.Cut(l.cfg.Generate, "."); ok {
		charset = cs
	}
	entry := l.cfg.Generate + " " + charset
	re := regexp.MustCompile(`(?m)^#?\s*` + regexp.QuoteMeta(entry) + `\s*$`)
	content := string(b)
	if loc := re.FindStringIndex(content); loc != nil {
		content = content[:loc[0]] + entry + content[loc[1]:]
	} else {
		content += entry + "\n"
	}
	if err := s.WriteFile("/etc/locale.gen", []byte(content), 0o644, "root", "root"); err != nil {
		return err
	}
	if err := s.Run(ctx, "locale-gen"); err != nil {
		return err
	}
	return s.WriteFile("/etc/default/locale", []byte("LANG="+l.cfg.Generate+"\n"), 0o644, "root", "root")
}
