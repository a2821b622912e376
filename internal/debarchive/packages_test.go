package debarchive

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const samplePackages = `Package: libfoo1
Source: foo (1.2-3)
Version: 1.2-3+b1
Installed-Size: 120
Maintainer: Someone <someone@example.org>
Architecture: amd64
Multi-Arch: same
Depends: libc6 (>= 2.34),
 zlib1g (>= 1:1.2)
Pre-Depends: ${misc:Pre-Depends}
Description: a library
 with a long description
 .
 over several lines
Homepage: https://example.org/foo
Section: libs
Priority: optional
Filename: pool/main/f/foo/libfoo1_1.2-3+b1_amd64.deb
Size: 34567
MD5sum: 0123456789abcdef0123456789abcdef
SHA256: 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef

Package: bash
Essential: yes
Version: 5.2.15-2
Architecture: amd64
Priority: required
Provides: sh
Filename: pool/main/b/bash/bash_5.2.15-2_amd64.deb
Size: 1490652
SHA256: 1111111111111111111111111111111111111111111111111111111111111111
`

func TestParsePackages(t *testing.T) {
	pkgs, err := ParsePackages(strings.NewReader(samplePackages), "main")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 {
		t.Fatalf("%d packages, want 2", len(pkgs))
	}
	foo, bash := pkgs[0], pkgs[1]
	want := Package{Name: "libfoo1", Version: "1.2-3+b1", Architecture: "amd64", Priority: "optional", MultiArch: "same",
		Depends: "libc6 (>= 2.34), zlib1g (>= 1:1.2)", PreDepends: "${misc:Pre-Depends}", Filename: "pool/main/f/foo/libfoo1_1.2-3+b1_amd64.deb",
		Size: 34567, MD5: "0123456789abcdef0123456789abcdef", SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Component: "main"}
	if *foo != want {
		t.Errorf("libfoo1 =\n%+v\nwant\n%+v", *foo, want)
	}
	if !bash.Essential || bash.Provides != "sh" || bash.Priority != "required" {
		t.Errorf("bash = %+v", *bash)
	}
	if h, _ := foo.Sum().Best(); h.Algo != "sha256" {
		t.Errorf("best checksum %v", h)
	}

	bad := []struct{ name, text, says string }{
		{"no package", "Version: 1\nFilename: a\n", "no Package field"},
		{"no version", "Package: a\nFilename: a\n", "has no Version"},
		{"no filename", "Package: a\nVersion: 1\n", "has no Filename"},
		{"bad size", "Package: a\nVersion: 1\nFilename: a\nSize: x\n", "is not a number"},
		{"bad sha256", "Package: a\nVersion: 1\nFilename: a\nSHA256: 00\n", "wrong length"},
		{"stray continuation", " continued\n", "continues no field"},
		{"not a field", "Package: a\ngarbage\n", "is not a field"},
		{"endless line", "Package: " + strings.Repeat("a", maxField+10) + "\n", "longer than"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePackages(strings.NewReader(tt.text), "main")
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("ParsePackages() = %v, want ErrMalformed saying %q", err, tt.says)
			}
		})
	}
}

// FuzzParsePackages: no panic, and an accepted stanza is complete, since
// an incomplete one could install the wrong file.
func FuzzParsePackages(f *testing.F) {
	f.Add([]byte(samplePackages))
	f.Add([]byte("Package: a\nVersion: 1\nFilename: a.deb\nDepends: b | c (>= 1), d [amd64], e:any\nProvides: f (= 2)\n\nPackage: b\nVersion: 1\nFilename: b.deb\nPre-Depends: a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParsePackages(bytes.NewReader(data), "main")
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.Filename == "" {
				t.Fatalf("accepted an incomplete stanza: %+v", p)
			}
		}
	})
}
