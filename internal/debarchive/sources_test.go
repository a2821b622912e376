package debarchive

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseOneLine(t *testing.T) {
	src := `# the seed's sources
deb http://mirror.example/debian lenny main non-free contrib
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian-security lenny/updates main contrib  # security
deb-src http://mirror.example/debian lenny main

deb http://mirror.example/ubuntu ./
`
	es, err := ParseOneLine(strings.NewReader(src), "sources.list")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 {
		t.Fatalf("got %d entries, want 4", len(es))
	}
	if got := es[1]; got.Suites[0] != "lenny/updates" || got.Options["signed-by"] != "/k.gpg" || got.Line != 3 || len(got.Components) != 2 {
		t.Errorf("entry 2 = %+v", got)
	}
	if got := es[0].OneLine(); got != "deb http://mirror.example/debian lenny main non-free contrib\n" {
		t.Errorf("OneLine() = %q", got)
	}
	if got := es[1].OneLine(); got != "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian-security lenny/updates main contrib\n" {
		t.Errorf("OneLine() = %q", got)
	}
	for _, bad := range []string{"deb", "rpm http://x a b", "deb [arch=amd64 http://x a b", "deb http://x lenny", "deb [x] http://x a b"} {
		if _, err := ParseOneLine(strings.NewReader(bad), "s"); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseOneLine(%q) = %v, want ErrSyntax", bad, err)
		}
	}
}

func TestParseDeb822(t *testing.T) {
	src := `Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Enabled: no
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 -----END PGP PUBLIC KEY BLOCK-----
`
	es, err := ParseDeb822(strings.NewReader(src), "debian.sources")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || len(es[0].Suites) != 2 || es[1].Enabled || es[1].Line != 8 {
		t.Fatalf("entries = %+v", es)
	}
	if !strings.Contains(es[1].Options["signed-by"], "END PGP") {
		t.Errorf("continuation lines lost: %q", es[1].Options["signed-by"])
	}
	for _, bad := range []string{"Types: deb\nSuites: x\n", " leading continuation\n", "no colon here\n"} {
		if _, err := ParseDeb822(strings.NewReader(bad), "s"); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseDeb822(%q) = %v, want ErrSyntax", bad, err)
		}
	}
}

func TestArchive(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/apt/sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte("deb http://mirror.example/debian-security bookworm-security main\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/a.sources"), []byte("Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/b.list"), []byte("deb http://mirror.example/debian/ bookworm main\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/c.disabled"), []byte("garbage"), 0o644)
	es, err := ReadHost(root)
	if err != nil {
		t.Fatal(err)
	}
	if uri, e, ok := Archive(es, ""); !ok || uri != "http://mirror.example/debian" || !strings.HasSuffix(e.File, "b.list") {
		t.Errorf("Archive() = %q %v %v", uri, e.File, ok)
	}
	if uri, _, ok := Archive(es, "security"); !ok || uri != "http://mirror.example/debian-security" {
		t.Errorf("Archive(security) = %q %v", uri, ok)
	}
	if _, _, ok := Archive(nil, ""); ok {
		t.Error("Archive(nil) found something")
	}
}

// What either writer emits parses back to the entries it was given:
// a one-line entry as one line and as a deb822 stanza, a deb822 file as
// deb822 stanzas.
func FuzzParseSources(f *testing.F) {
	f.Add("deb [arch=amd64] http://m/debian lenny main\n")
	f.Add("deb [ arch=amd64,i386 signed-by=/k.gpg Trusted=yes ] http://m/debian ./ # c\n")
	f.Add("Types: deb\nURIs: http://m\nSuites: a\nComponents: main\n\n")
	f.Add("Types: deb deb-src\nURIs: http://m\nSuites: a b\nEnabled: no\nArchitectures: amd64\n i386\nSigned-By:\n -----BEGIN\n .\n x\n")
	f.Fuzz(func(t *testing.T, s string) {
		if es, err := ParseOneLine(strings.NewReader(s), "f"); err == nil {
			for _, e := range es {
				again, err := ParseLine(e.OneLine())
				if err != nil || !sameEntry(again, e) {
					t.Fatalf("%q: OneLine() %q reads as %+v, %v; want %+v", s, e.OneLine(), again, err, e)
				}
				stanza, err := ParseDeb822(strings.NewReader(e.Deb822()), "g")
				if err != nil || len(stanza) != 1 || !sameEntry(stanza[0], e) {
					t.Fatalf("%q: Deb822() %q reads as %+v, %v; want %+v", s, e.Deb822(), stanza, err, e)
				}
			}
		}
		if es, err := ParseDeb822(strings.NewReader(s), "f"); err == nil {
			var b strings.Builder
			for i, e := range es {
				if i > 0 {
					b.WriteByte('\n')
				}
				b.WriteString(e.Deb822())
			}
			again, err := ParseDeb822(strings.NewReader(b.String()), "g")
			if err != nil || len(again) != len(es) {
				t.Fatalf("%q: Deb822() %q reads as %+v, %v; want %+v", s, b.String(), again, err, es)
			}
			for i := range es {
				if !sameEntry(again[i], es[i]) {
					t.Fatalf("%q: Deb822() %q reads as %+v; want %+v", s, b.String(), again[i], es[i])
				}
			}
		}
	})
}

// sameEntry compares what a source says, not where it was read.
func sameEntry(a, b Entry) bool {
	return slices.Equal(a.Types, b.Types) && slices.Equal(a.URIs, b.URIs) && slices.Equal(a.Suites, b.Suites) &&
		slices.Equal(a.Components, b.Components) && a.Enabled == b.Enabled && maps.Equal(a.Options, b.Options)
}
