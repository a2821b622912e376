package dpkg

import (
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

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("Package: a\nStatus: install ok installed\nVersion: 1\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseStatus(strings.NewReader(string(b)))
	})
}
