package dpkg

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	const status = `Package: base-files
Status: install ok installed
Installed-Size: 390
Architecture: amd64
Version: 12.4+deb12u10

Package: old
Status: deinstall ok config-files
Version: 1.0

Package: half
Status: install ok unpacked
Version: 2.0

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u10
`
	got, err := ParseStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "base-files" || got[0].InstalledKiB != 390 || got[0].Key() != "base-files" ||
		got[1].Version != "2.36-9+deb12u10" || got[1].Key() != "libc6:amd64" {
		t.Errorf("ParseStatus = %+v", got)
	}
}

// FuzzParseStatus holds ParseStatus to two properties on any input it
// accepts: what it returns, written back as a status file, parses to the
// same packages; and a paragraph of a package that is not installed in
// front of the input changes nothing.
func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("Package: a\nStatus: install ok installed\nVersion: 1\n\n"))
	f.Add([]byte("Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nInstalled-Size: 12\nVersion: 2.36\n\nPackage: old\nStatus: deinstall ok config-files\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseStatus(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, p := range got {
			if p.Name == "" {
				t.Fatalf("a package without a name: %+v", p)
			}
		}
		if text, ok := format(got); ok {
			again, err := ParseStatus(strings.NewReader(text))
			if err != nil || !slices.Equal(again, got) {
				t.Fatalf("written back:\n%s\nparses to %+v, %v; want %+v", text, again, err, got)
			}
		}
		// Only where the input starts a paragraph: a leading continuation
		// line or a signature would belong to the added one.
		if len(b) > 0 && (b[0] >= 'A' && b[0] <= 'Z' || b[0] >= 'a' && b[0] <= 'z') {
			removed := "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
			with, err := ParseStatus(strings.NewReader(removed + string(b)))
			if err != nil || !slices.Equal(with, got) {
				t.Fatalf("after a removed package: %+v, %v; want %+v", with, err, got)
			}
		}
	})
}

// format writes packages as dpkg's status file, if each value fits on
// one line as it was parsed (a field's value is trimmed; a multi-line one
// is dpkg's to fold).
func format(ps []Installed) (string, bool) {
	var b strings.Builder
	for _, p := range ps {
		fields := [][2]string{{"Package", p.Name}, {"Status", "install ok installed"}, {"Version", p.Version},
			{"Architecture", p.Architecture}, {"Multi-Arch", p.MultiArch}}
		if p.InstalledKiB != 0 {
			fields = append(fields, [2]string{"Installed-Size", strconv.FormatInt(p.InstalledKiB, 10)})
		}
		for _, f := range fields {
			if f[1] == "" {
				continue
			}
			if strings.ContainsAny(f[1], "\r\n") || strings.TrimSpace(f[1]) != f[1] {
				return "", false
			}
			b.WriteString(f[0] + ": " + f[1] + "\n")
		}
		b.WriteString("\n")
	}
	return b.String(), true
}
