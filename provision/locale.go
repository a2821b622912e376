package provision

import (
	"context"
	"regexp"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/quote"
	"github.com/krgimage/krgimage/recipes"
)

// Locale follows the seed's advice to export LC_ALL=C in root's .bashrc
// (bashrc: false skips it), and optionally generates a locale:
//
//   - locale: {lc_all: C, generate: en_US.UTF-8}
type Locale struct {
	LCAll    string `yaml:"lc_all" check:"locale"`
	Bashrc   bool   `yaml:"bashrc"`
	Generate string `yaml:"generate,omitempty" check:"locale"`
}

var localeType = typeOf(func() *Locale { return &Locale{LCAll: "C", Bashrc: true} }, func(c *Locale, _ *Image) Step { return locale{c} })

func (l *Locale) Validate(v *recipes.Validator, keyPath string) {
	if l.LCAll == "" && l.Bashrc {
		v.Errorf(keyPath+".lc_all", recipes.ErrMissing, "lc_all is empty; set bashrc: false to skip .bashrc")
	}
}

// locale exports LC_ALL in root's .bashrc and generates a locale
// (Locale).
type locale struct{ cfg *Locale }

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

// Reads nothing beyond its configuration.
func (locale) Reads() ([]Input, error) { return nil, nil }

// ChangesKernel: locales are nothing a kernel package reads.
func (locale) ChangesKernel() bool { return false }

func (l locale) Apply(ctx context.Context, s *chroot.Session) error {
	if l.cfg.Bashrc {
		if err := l.bashrc(s); err != nil {
			return err
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

// bashrc adds the export to root's .bashrc once.
func (l locale) bashrc(s *chroot.Session) error {
	b, err := s.ReadFile("/root/.bashrc")
	if err != nil {
		return err
	}
	line := "export LC_ALL=" + quote.Shell(l.cfg.LCAll)
	if strings.Contains(string(b), "\n"+line+"\n") || strings.HasPrefix(string(b), line+"\n") {
		return nil
	}
	content := string(b)
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	content += "# Added by krgimage: keeps Perl quiet about missing locales.\n" + line + "\n"
	return s.WriteFile("/root/.bashrc", []byte(content), 0o644, "root", "root")
}
