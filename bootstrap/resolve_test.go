package bootstrap

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/logging"
)

// index builds an Index from one-line package descriptions:
// "name version [field=value]...", fields pri, ess, dep, pre, prov, arch.
func index(t *testing.T, lines ...string) *Index {
	t.Helper()
	var pkgs []*debarchive.Package
	for _, l := range lines {
		f := strings.Split(l, ";")
		nv := strings.Fields(f[0])
		p := &debarchive.Package{Name: nv[0], Version: nv[1], Architecture: "amd64", Priority: "optional", Filename: "pool/" + nv[0] + ".deb"}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			switch k {
			case "pri":
				p.Priority = v
			case "ess":
				p.Essential = true
			case "dep":
				p.Depends = v
			case "pre":
				p.PreDepends = v
			case "prov":
				p.Provides = v
			case "arch":
				p.Architecture = v
			default:
				t.Fatalf("bad field %q", kv)
			}
		}
		pkgs = append(pkgs, p)
	}
	return NewIndex("amd64", pkgs, logging.Discard())
}

func TestResolve(t *testing.T) {
	ix := index(t,
		"libc6 2.36; pri=required; dep=libgcc-s1",
		"libgcc-s1 12; pri=required; dep=libc6 (>= 2.35)",
		"dash 0.5; pri=required; ess; pre=libc6",
		"mawk 1.3; pri=required; prov=awk",
		"gawk 5.2; prov=awk",
		"base-files 12; pri=required; ess; pre=awk",
		"apt 2.6; pri=important; dep=libapt (>= 2.6), gpgv | gpgv2, adduser",
		"libapt 2.6; dep=libc6",
		"libapt 2.5; dep=libc6",
		"gpgv 2.2",
		"gpgv2 2.2",
		"adduser 3.1; dep=passwd, debconf | debconf-2.0",
		"passwd 4.13; pri=required",
		"cdebconf 0.2; prov=debconf-2.0",
		"debconf 1.5; pri=required; prov=debconf-2.0",
		"cron 3; pri=important; dep=default-mta | mail-transport-agent, libc6",
		"exim 4.96; prov=mail-transport-agent",
		"postfix 3.7; pri=standard; prov=mail-transport-agent",
		"tool 1; dep=libold (>= 2) | libnew",
		"libold 1",
		"libnew 1",
		"vtool 1; dep=vlib (>= 2)",
		"vlib-real 1; prov=vlib (= 2)",
		"vlib-unversioned 1; prov=vlib",
		"usrtool 1; dep=usrmerge | usr-is-merged",
		"usrmerge 38",
		"usr-is-merged 37",
		"i386-thing 1; pri=required; arch=i386",
		"qualified 1; dep=libc6:any, gpgv [amd64], gpgv2 [i386]",
		"broken 1; dep=nowhere",
		"needs-broken 1; dep=broken",
		"too-new 1; dep=libc6 (>= 3)",
	)
	tests := []struct {
		name    string
		sel     Selection
		exclude []string
		want    []string // nil: only check wantErr
		wantErr error
		errText string
	}{
		{
			name: "minbase",
			sel:  Selection{Codename: "bookworm", Variant: "minbase"},
			// libapt 2.6, not 2.5; gpgv, the first alternative; debconf,
			// already required, rather than its virtual package; mawk,
			// required, provides awk; usr-is-merged for bookworm.
			want: []string{"adduser", "apt", "base-files", "dash", "debconf", "gpgv", "libapt", "libc6", "libgcc-s1", "mawk", "passwd", "usr-is-merged"},
		},
		{
			name: "important picks the most important provider",
			sel:  Selection{Codename: "bullseye", Variant: "important"},
			want: []string{"adduser", "apt", "base-files", "cron", "dash", "debconf", "gpgv", "libapt", "libc6", "libgcc-s1", "mawk", "passwd", "postfix"},
		},
		{
			name:    "exclude keeps what another package needs",
			sel:     Selection{Codename: "trixie", Variant: "minbase", Exclude: []string{"passwd", "gpgv"}},
			exclude: []string{"passwd", "gpgv"},
			// gpgv2 replaces the excluded alternative; passwd, which
			// adduser needs, stays.
			want: []string{"adduser", "apt", "base-files", "dash", "debconf", "gpgv2", "libapt", "libc6", "libgcc-s1", "mawk", "passwd"},
		},
		{
			name: "version decides the alternative",
			sel:  Selection{Codename: "trixie", Variant: "minbase", Include: []string{"tool"}},
			want: []string{"adduser", "apt", "base-files", "dash", "debconf", "gpgv", "libapt", "libc6", "libgcc-s1", "libnew", "mawk", "passwd", "tool"},
		},
		{
			name: "versioned Provides",
			sel:  Selection{Codename: "trixie", Variant: "minbase", Include: []string{"vtool", "usrtool", "qualified"}},
			want: []string{"adduser", "apt", "base-files", "dash", "debconf", "gpgv", "libapt", "libc6", "libgcc-s1", "mawk", "passwd",
				"qualified", "usr-is-merged", "usrtool", "vlib-real", "vtool"},
		},
		{
			name:    "unknown include",
			sel:     Selection{Codename: "trixie", Variant: "minbase", Include: []string{"ghost"}},
			wantErr: ErrNoPackage, errText: "ghost (include): ghost is not in the index and nothing provides it",
		},
		{
			name:    "chain",
			sel:     Selection{Codename: "trixie", Variant: "minbase", Include: []string{"needs-broken"}},
			wantErr: ErrUnsatisfiable, errText: "broken 1 needs nowhere, but nowhere is not in the index and nothing provides it (chain: needs-broken (include) -> broken)",
		},
		{
			name:    "version too new",
			sel:     Selection{Codename: "trixie", Variant: "minbase", Include: []string{"too-new"}},
			wantErr: ErrUnsatisfiable, errText: "libc6 2.36 does not satisfy (>= 3)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seeds, drop := ix.Seeds(tt.sel)
			res, err := ix.Resolve(seeds, drop, tt.exclude, logging.Discard())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Resolve() = %v, want %v saying %q", err, tt.wantErr, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range res.Packages {
				got = append(got, p.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("resolved\n%q\nwant\n%q", got, tt.want)
			}
			if p := ix.Find("libapt", "2.6"); p == nil || !slices.Contains(res.Packages, p) {
				t.Errorf("libapt 2.6, the newest, was not chosen")
			}
			if !strings.HasPrefix(res.Why["libgcc-s1"], "apt (variant") && !strings.HasPrefix(res.Why["libgcc-s1"], "libgcc-s1 (Priority: required)") {
				t.Errorf("why libgcc-s1: %q", res.Why["libgcc-s1"])
			}
		})
	}
}

func TestSeeds(t *testing.T) {
	ix := index(t, "a 1; pri=required", "b 1; pri=important", "apt 1", "build-essential 1", "ca-certificates 1", "apt-transport-https 1", "usr-is-merged 1")
	tests := []struct {
		sel  Selection
		want string
		drop bool
	}{
		{Selection{Codename: "bullseye", Variant: "minbase"}, "a apt", false},
		{Selection{Codename: "bookworm", Variant: "minbase"}, "a usr-is-merged apt", true},
		{Selection{Codename: "sid", Variant: "buildd"}, "a apt build-essential", true},
		{Selection{Codename: "trixie", Variant: "important", Include: []string{"c"}, Exclude: []string{"b"}}, "a c", true},
		{Selection{Codename: "lenny", Variant: "important", HTTPS: true}, "a b apt-transport-https ca-certificates", false},
		{Selection{Codename: "bookworm", Variant: "minbase", HTTPS: true, Exclude: []string{"usr-is-merged"}}, "a apt ca-certificates", true},
	}
	for _, tt := range tests {
		seeds, drop := ix.Seeds(tt.sel)
		var names []string
		for _, s := range seeds {
			names = append(names, s.Name)
		}
		if got := strings.Join(names, " "); got != tt.want || drop["usrmerge"] != tt.drop {
			t.Errorf("Seeds(%+v) = %q, drop usrmerge %v; want %q, %v", tt.sel, got, drop["usrmerge"], tt.want, tt.drop)
		}
	}
}

// FuzzResolve feeds what the Packages parser accepts to the resolver,
// which must not panic on any relation an index can hold.
func FuzzResolve(f *testing.F) {
	f.Add([]byte("Package: a\nVersion: 1\nFilename: a.deb\nDepends: b | c (>= 1), d [amd64], e:any\nProvides: f (= 2)\n\nPackage: b\nVersion: 1\nFilename: b.deb\nPre-Depends: a\n"))
	f.Add([]byte("Package: bash\nEssential: yes\nPriority: required\nVersion: 5.2\nProvides: sh\nDepends: libc6 (>= 2.34),\n libtinfo6 (>= 6)\nFilename: bash.deb\n\nPackage: libc6\nVersion: 2.36\nMulti-Arch: same\nFilename: libc6.deb\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := debarchive.ParsePackages(bytes.NewReader(data), "main")
		if err != nil {
			return
		}
		var seeds []Seed
		for _, p := range pkgs {
			p.Architecture = "amd64"
			if len(seeds) < 8 {
				seeds = append(seeds, Seed{Name: p.Name, Why: "fuzz"})
			}
		}
		ix := NewIndex("amd64", pkgs, logging.Discard())
		ix.Resolve(seeds, nil, nil, logging.Discard())
	})
}
