package debarchive

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

const lennyRelease = `Origin: Debian
Label: Debian
Suite: oldstable
Version: 5.0.10
Codename: lenny
Date: Sat, 10 Mar 2012 11:03:41 UTC
Architectures: alpha amd64 arm armel hppa i386 ia64 mips mipsel powerpc s390 sparc
Components: main contrib non-free
Description: Debian 5.0.10 Released 10 March 2012
MD5Sum:
 3b1ec1d5ea43dd1d7aeb04148b4c8b30  7048362 main/binary-amd64/Packages
 2c07e76a3ac6e8ac1ff6e8ee6c72ef4d  1969390 main/binary-amd64/Packages.gz
SHA1:
 e2da4dd29cfde4d6f1e3c4adcd1af9458c4da3f6  7048362 main/binary-amd64/Packages
 2f52f6e1b84b0ff2b2fa9b5a2be1a5ba7a5b2d2b  1969390 main/binary-amd64/Packages.gz
SHA256:
 1c5d4da8a2f0c04ab81ba67ac6f4ee1f5fa9a0b1a4e2c3c0f6b0f6f9e3b6b0a1  7048362 main/binary-amd64/Packages
`

func TestParseRelease(t *testing.T) {
	tests := []struct {
		name string
		text string
		want func(t *testing.T, r *Release)
		err  error
	}{
		{
			name: "lenny",
			text: lennyRelease,
			want: func(t *testing.T, r *Release) {
				if r.Codename != "lenny" || r.Suite != "oldstable" || r.Version != "5.0.10" || !r.Date.Equal(time.Date(2012, 3, 10, 11, 3, 41, 0, time.UTC)) {
					t.Errorf("fields = %+v", r)
				}
				if !slices.Contains(r.Architectures, "amd64") || !slices.Equal(r.Components, []string{"main", "contrib", "non-free"}) {
					t.Errorf("architectures %v, components %v", r.Architectures, r.Components)
				}
				plain := r.Files["main/binary-amd64/Packages"]
				if plain.Size != 7048362 || plain.MD5 == "" || plain.SHA1 == "" || plain.SHA256 == "" {
					t.Errorf("Packages = %+v", plain)
				}
				if h, _ := r.Files["main/binary-amd64/Packages.gz"].Best(); h.Algo != "sha1" || !h.Weak() {
					t.Errorf("best checksum of Packages.gz = %v, want its SHA1", h)
				}
				idx, err := r.PackagesIndexes("main", "amd64")
				if err != nil || len(idx) != 2 || idx[0].Path != "main/binary-amd64/Packages.gz" {
					t.Errorf("PackagesIndexes = %+v, %v", idx, err)
				}
			},
		},
		{
			name: "valid until, trailing blank lines, comment-free",
			text: "Codename: trixie\nValid-Until: Sat, 18 Jan 2025 08:00:00 UTC\nSHA256:\n " + strings.Repeat("ab", 32) + " 12 main/binary-amd64/Packages.xz\n\n\n",
			want: func(t *testing.T, r *Release) {
				if r.ValidUntil.IsZero() || r.Files["main/binary-amd64/Packages.xz"].Size != 12 {
					t.Errorf("Release = %+v", r)
				}
				if _, err := r.PackagesIndexes("contrib", "amd64"); !errors.Is(err, ErrUnknownSuite) {
					t.Errorf("PackagesIndexes(contrib) = %v, want ErrUnknownSuite", err)
				}
			},
		},
		{name: "short checksum", text: "Codename: x\nSHA256:\n abcd 12 main/binary-amd64/Packages\n", err: ErrMalformed},
		{name: "not hex", text: "Codename: x\nMD5Sum:\n " + strings.Repeat("zz", 16) + " 12 a\n", err: ErrMalformed},
		{name: "bad size", text: "Codename: x\nSHA1:\n " + strings.Repeat("00", 20) + " -1 a\n", err: ErrMalformed},
		{name: "two sizes", text: "Codename: x\nMD5Sum:\n " + strings.Repeat("00", 16) + " 1 a\nSHA1:\n " + strings.Repeat("00", 20) + " 2 a\n", err: ErrMalformed},
		{name: "missing path", text: "Codename: x\nSHA256:\n " + strings.Repeat("00", 32) + " 1\n", err: ErrMalformed},
		{name: "no field", text: "Codename: x\nthis is not a field\n", err: ErrMalformed},
		{name: "nameless", text: "Origin: Debian\n", err: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRelease([]byte(tt.text))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseRelease() = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want(t, r)
		})
	}
}

// FuzzParseRelease: no panic, and accepted checksums have their
// algorithm's length.
func FuzzParseRelease(f *testing.F) {
	f.Add([]byte(lennyRelease))
	f.Add([]byte("Codename: x\nSHA256:\n " + strings.Repeat("ab", 32) + " 1 main/binary-amd64/Packages.gz\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRelease(data)
		if err != nil {
			return
		}
		for path, fs := range r.Files {
			for algo, v := range map[string]string{"md5": fs.MD5, "sha1": fs.SHA1, "sha256": fs.SHA256} {
				if n, _ := HexLen(algo); v != "" && len(v) != n {
					t.Fatalf("%s: %s checksum %q accepted", path, algo, v)
				}
			}
		}
		r.PackagesIndexes("main", "amd64")
		// What was read is all that counts: written out again, it reads
		// back the same, so no field depends on how it was spelt.
		again, err := ParseRelease(marshalRelease(r))
		if err != nil {
			t.Fatalf("the re-serialised Release does not parse: %v\n%s", err, marshalRelease(r))
		}
		if !sameRelease(r, again) {
			t.Fatalf("parse, serialise, parse changed the Release:\n%+v\n%+v", r, again)
		}
	})
}

// marshalRelease writes the fields ParseRelease reads.
func marshalRelease(r *Release) []byte {
	var b strings.Builder
	for _, f := range [][2]string{{"Origin", r.Origin}, {"Suite", r.Suite}, {"Codename", r.Codename}, {"Version", r.Version},
		{"Architectures", strings.Join(r.Architectures, " ")}, {"Components", strings.Join(r.Components, " ")}} {
		if f[1] != "" {
			b.WriteString(f[0] + ": " + f[1] + "\n")
		}
	}
	for _, d := range []struct {
		name string
		t    time.Time
	}{{"Date", r.Date}, {"Valid-Until", r.ValidUntil}} {
		if !d.t.IsZero() {
			b.WriteString(d.name + ": " + d.t.Format(time.RFC1123) + "\n")
		}
	}
	paths := slices.Sorted(maps.Keys(r.Files))
	for _, algo := range []string{"MD5Sum", "SHA1", "SHA256"} {
		b.WriteString(algo + ":\n")
		for _, p := range paths {
			fs := r.Files[p]
			if v := map[string]string{"MD5Sum": fs.MD5, "SHA1": fs.SHA1, "SHA256": fs.SHA256}[algo]; v != "" {
				fmt.Fprintf(&b, " %s %d %s\n", v, fs.Size, p)
			}
		}
	}
	return []byte(b.String())
}

func sameRelease(a, b *Release) bool {
	return a.Origin == b.Origin && a.Suite == b.Suite && a.Codename == b.Codename && a.Version == b.Version &&
		a.Date.Equal(b.Date) && a.ValidUntil.Equal(b.ValidUntil) &&
		slices.Equal(a.Architectures, b.Architectures) && slices.Equal(a.Components, b.Components) && maps.Equal(a.Files, b.Files)
}
