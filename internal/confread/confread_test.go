package confread_test

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/krgimage/krgimage/internal/confread"
	"github.com/krgimage/krgimage/internal/quote"
)

var hostile = []string{
	"", "plain", "two words", "it's", `say "hi"`, `back\slash`, "$(id>/tmp/x)", "`id`", "a;b", "x\ny",
	"/srv/nfs\n/ *(rw,no_root_squash,insecure)\n#", "tab\there", "#lead", "ünï\u2028code", "\x00nul", "(paren)",
}

// FuzzShellWord: a value written with quote.Shell or quote.ShellValue
// reads back, as sh reads it, as exactly that one value.
func FuzzShellWord(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "\n") {
			// A quoted newline is one value to sh but two lines to a
			// line reader; validation refuses it before any writer.
			return
		}
		for _, q := range []func(string) string{quote.Shell, quote.ShellValue} {
			text := "export V=" + q(s) + "\n"
			got, err := confread.Shell(text)
			if err != nil {
				t.Fatalf("%q: %v", text, err)
			}
			if len(got) != 1 || got[0].Name != "V" || got[0].Value != s || !got[0].Export {
				t.Fatalf("%q read back as %+v", text, got)
			}
		}
	})
}

// FuzzOctalField: a value written with quote.Octal stays one fstab field.
func FuzzOctalField(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return
		}
		text := "src " + quote.Octal(s) + " nfs " + quote.Octal(s) + " 0 0\n"
		got, err := confread.Fstab(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if len(got) != 1 || got[0].Target != s || got[0].Options != s || got[0].Type != "nfs" {
			t.Fatalf("%q read back as %+v", text, got)
		}
		if s[0] == '"' || s[0] == '#' {
			// exportfs would read a quoted path, fstab a comment:
			// validation refuses both as the first field.
			return
		}
		ex, err := confread.Exports(quote.Octal(s) + " *(ro)\n")
		if err != nil || len(ex) != 1 || ex[0].Path != s {
			t.Fatalf("exports path %q read back as %+v, %v", s, ex, err)
		}
	})
}

// FuzzDHCPString: a value written with quote.DHCP is one string token.
func FuzzDHCPString(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		text := "group {\n\toption root-path " + quote.DHCP(s) + ";\n}\n"
		got, err := confread.DHCP(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if len(got) != 1 || len(got[0].Block) != 1 {
			t.Fatalf("%q read back as %+v", text, got)
		}
		w := got[0].Block[0].Words
		if len(w) != 3 || !w[2].Quoted || w[2].Text != s {
			t.Fatalf("%q read back as %+v", text, w)
		}
	})
}

// FuzzGrubWord: a value written with quote.Grub is one GRUB word, its
// control characters (which GRUB cannot hold) made spaces.
func FuzzGrubWord(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		text := "linux /vmlinuz " + quote.Grub(s) + "\n"
		got, err := confread.Grub(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if len(got) != 1 || len(got[0].Words) != 3 || got[0].Words[2] != quote.Plain(s) {
			t.Fatalf("%q read back as %+v", text, got)
		}
	})
}

// FuzzSyslinuxWord: a value written with quote.Word stays one word of
// one directive.
func FuzzSyslinuxWord(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		text := "LABEL " + quote.Word(s) + "\n    append a " + quote.Word(s) + "\n"
		got, err := confread.Syslinux(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if len(got) != 2 || got[0].Key != "LABEL" || got[1].Key != "APPEND" || len(strings.Fields(got[1].Args)) > 2 {
			t.Fatalf("%q read back as %+v", text, got)
		}
	})
}

func TestReadersRefuseWhatNoWriterWrites(t *testing.T) {
	for _, c := range []struct {
		name string
		read func(string) error
		text string
	}{
		{"shell substitution", shell, "TFTP_OPTIONS=--secure $(id>/tmp/x)\n"},
		{"shell in double quotes", shell, `TFTP_OPTIONS="--secure $(id)"` + "\n"},
		{"shell second command", shell, "A=b; rm -rf /\n"},
		{"shell open quote", shell, "A='b\n"},
		{"fstab short", fstab, "a b\n"},
		{"exports bad client", exports, "/srv *(rw\n"},
		{"dhcp open string", dhcp, "option root-path \"x;\n"},
		{"dhcp unbalanced", dhcp, "group {\n"},
		{"grub expansion", grub, "linux /vmlinuz $root\n"},
		{"grub quoted expansion", grub, "if [ \"$root\" = x ]\n"},
		{"grub expansion in a longer word", grub, "if [ \"$net_default_ip.x\" = x ]\n"},
	} {
		if err := c.read(c.text); err == nil {
			t.Errorf("%s: %q accepted", c.name, c.text)
		}
	}
}

func shell(s string) error   { _, err := confread.Shell(s); return err }
func fstab(s string) error   { _, err := confread.Fstab(s); return err }
func exports(s string) error { _, err := confread.Exports(s); return err }
func dhcp(s string) error    { _, err := confread.DHCP(s); return err }
func grub(s string) error    { _, err := confread.Grub(s, "net_default_ip"); return err }

// A variable the caller names is read where it is expanded whole, and
// only there.
func TestGrubVariables(t *testing.T) {
	cmds, err := confread.Grub(`if [ "$net_default_ip" = '10.0.0.5' ]; then set default=1; fi`, "net_default_ip")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"if", "[", "$net_default_ip", "=", "10.0.0.5", "]"}, {"then", "set", "default=1"}, {"fi"}}
	var got [][]string
	for _, c := range cmds {
		got = append(got, c.Words)
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := confread.Grub(`if [ "$net_default_ip" = x ]`); err == nil {
		t.Error("a variable the caller did not name was accepted")
	}
}

// FuzzDnsmasqFields: a value written with quote.DnsmasqString is one
// field, its text kept but for control characters (left out) and #
// (made _), and one written with quote.DnsmasqField is one field too.
func FuzzDnsmasqFields(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		text := "dhcp-option=option:root-path," + quote.DnsmasqString(s) + "\ndhcp-host=52:54:00:00:00:01,10.0.0.1," + quote.DnsmasqField(s) + "\n"
		got, err := confread.Dnsmasq(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		want := strings.ReplaceAll(strings.Map(func(r rune) rune {
			if quote.IsControl(r) {
				return -1
			}
			return r
		}, s), "#", "_")
		if len(got) != 2 || len(got[0].Fields) != 2 || got[0].Fields[1] != want || len(got[1].Fields) != 3 {
			t.Fatalf("%q read back as %+v, want root path %q", text, got, want)
		}
	})
}
