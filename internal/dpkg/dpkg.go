// Package dpkg reads dpkg's record of the packages installed in a root,
// for build reports and snapshot diffs.
package dpkg

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"pault.ag/go/debian/control"
)

// StatusFile is dpkg's database of installed packages, relative to a root.
const StatusFile = "var/lib/dpkg/status"

// Installed is a package dpkg has installed.
type Installed struct {
	Name, Version, Architecture, MultiArch string
	// InstalledKiB is dpkg's Installed-Size.
	InstalledKiB int64
}

// Key names the package as dpkg does: with its architecture when several
// architectures of it can be installed at once.
func (p Installed) Key() string {
	if p.Architecture != "" && p.Architecture != "all" && p.MultiArch == "same" {
		return p.Name + ":" + p.Architecture
	}
	return p.Name
}

// ParseStatus returns the packages a status file says are installed (not
// those only unpacked, half-configured or removed), in the file's order.
func ParseStatus(r io.Reader) ([]Installed, error) {
	pr, err := control.NewParagraphReader(r, nil)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", StatusFile, err)
	}
	var out []Installed
	for {
		p, err := pr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", StatusFile, err)
		}
		st := strings.Fields(p.Values["Status"])
		if p.Values["Package"] == "" || len(st) != 3 || st[2] != "installed" {
			continue
		}
		kib, _ := strconv.ParseInt(p.Values["Installed-Size"], 10, 64)
		out = append(out, Installed{Name: p.Values["Package"], Version: p.Values["Version"],
			Architecture: p.Values["Architecture"], MultiArch: p.Values["Multi-Arch"], InstalledKiB: kib})
	}
}
