package provision

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/confread"
	"github.com/krgimage/krgimage/internal/golden"
	"github.com/krgimage/krgimage/recipes"
)

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "golden", name), got)
}

func shipped(t *testing.T, name string, vars map[string]string) *recipes.Recipe {
	t.Helper()
	r, err := recipes.LoadShipped(name, recipes.Options{Vars: vars, LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fstabOf(t *testing.T, r *recipes.Recipe) *Fstab {
	for _, e := range r.Provision {
		if f, ok := e.Config.(*Fstab); ok {
			return f
		}
	}
	t.Fatalf("recipe %s has no fstab step", r.Name)
	return nil
}

// The seed's two fstab layouts.
func TestFstabGolden(t *testing.T) {
	ro := shipped(t, "kerrighed-lenny", nil)
	checkGolden(t, "fstab-lenny-ro", []byte(FstabFile(ro, fstabOf(t, ro))))

	rw := shipped(t, "kerrighed-lenny", nil)
	rw.NFSRoot.Mode = "rw"
	checkGolden(t, "fstab-lenny-rw", []byte(FstabFile(rw, fstabOf(t, rw))))

	bw := shipped(t, "bookworm-nfsroot", nil)
	checkGolden(t, "fstab-bookworm-"+bw.NFSRoot.Mode, []byte(FstabFile(bw, fstabOf(t, bw))))

	// Options per mount point win over the defaults.
	cfg := *fstabOf(t, ro)
	cfg.Options = map[string]string{"/var": "rw,hard,intr", "/proc": "hidepid=2"}
	got := FstabFile(ro, &cfg)
	for _, want := range []string{"10.11.12.1:/NFSROOT/kerrighed/var\t/var\tnfs\trw,hard,intr\t0\t0", "none\t/proc\tproc\thidepid=2\t0\t0"} {
		if !strings.Contains(got, want) {
			t.Errorf("fstab lacks %q:\n%s", want, got)
		}
	}
}

// An empty option list reaches fstab as defaults, never as an empty
// field that getmntent would fill with the dump number.
func TestFstabEmptyOptions(t *testing.T) {
	r := shipped(t, "bookworm-nfsroot", nil)
	r.NFSRoot.Mode, r.NFSRoot.Version, r.NFSRoot.Tmpfs = "ro", 4, nil
	r.NFSRoot.Writable = []recipes.Mount{
		{Path: "/var", Type: "nfs", Source: "/srv/var", Options: []string{}},
		{Path: "/tmp", Type: "tmpfs", Options: []string{}},
		{Path: "/root", Type: "nfs", Source: "/srv/root", Options: []string{"rw", "nfsvers=3"}},
	}
	text := FstabFile(r, &Fstab{Options: map[string]string{"/proc": ""}})
	entries, err := confread.Fstab(text)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		got[e.Target] = e.Options + " " + e.Dump + " " + e.Pass
	}
	want := map[string]string{"/proc": "defaults 0 0", "/sys": "defaults 0 0", "/var": "vers=4 0 0", "/tmp": "defaults 0 0", "/root": "rw,nfsvers=3 0 0"}
	if !maps.Equal(got, want) {
		t.Errorf("options %v, want %v\n%s", got, want, text)
	}
}

func TestHostsGolden(t *testing.T) {
	r := shipped(t, "kerrighed-lenny", nil)
	checkGolden(t, "hosts-lenny", []byte(HostsFile(r, []HostEntry{{IP: mustAddr(t, "10.11.12.2"), Names: []string{"storage"}}})))
}

func mustAddr(t *testing.T, s string) recipes.Addr {
	var a recipes.Addr
	if err := a.UnmarshalText([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAptSourcesRender(t *testing.T) {
	lenny := shipped(t, "kerrighed-lenny", nil)
	tests := []struct {
		name, mirror, security string
		cfg                    AptSources
		r                      *recipes.Recipe
		path, want             string
	}{
		{"lenny, as the seed", "http://archive.example/debian", "http://archive.example/debian-security",
			AptSources{Security: true, Format: "auto"}, lenny, "/etc/apt/sources.list",
			"deb http://archive.example/debian lenny main contrib non-free\ndeb http://archive.example/debian-security lenny/updates main contrib non-free\n"},
		{"explicit lines", "http://m/debian", "",
			AptSources{Sources: []string{"deb http://x/debian lenny main"}, Security: true}, lenny, "/etc/apt/sources.list",
			"deb http://x/debian lenny main\n"},
		{"deb822", "http://m/debian", "http://m/debian-security",
			AptSources{Security: true, Format: "deb822"}, shipped(t, "bookworm-nfsroot", nil), "/etc/apt/sources.list.d/debian.sources",
			"Types: deb\nURIs: http://m/debian\nSuites: bookworm\nComponents: main\n\nTypes: deb\nURIs: http://m/debian-security\nSuites: bookworm-security\nComponents: main\n"},
		{"deb822 keeps the options", "http://m/debian", "",
			AptSources{Sources: []string{"deb [signed-by=/k.gpg arch=amd64] http://x/debian bookworm main contrib"}, Format: "deb822"},
			shipped(t, "bookworm-nfsroot", nil), "/etc/apt/sources.list.d/debian.sources",
			"Types: deb\nURIs: http://x/debian\nSuites: bookworm\nComponents: main contrib\nArchitectures: amd64\nSigned-By: /k.gpg\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := aptSources{cfg: &tt.cfg, img: &Image{Recipe: tt.r, Mirror: tt.mirror, SecurityMirror: tt.security}}
			content, err := a.render()
			if err != nil {
				t.Fatal(err)
			}
			if path := a.path(); path != tt.path || !strings.HasSuffix(content, tt.want) {
				t.Errorf("render() = %s:\n%s\nwant %s ending in:\n%s", a.path(), content, tt.path, tt.want)
			}
		})
	}
}
