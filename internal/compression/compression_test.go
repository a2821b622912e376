package compression

import (
	"strings"
	"testing"
)

func TestFromName(t *testing.T) {
	tests := []struct {
		name    string
		want    Name
		named   bool
		wantErr string
	}{
		{"root.tar.zst", Zstd, true, ""},
		{"ROOT.TAR.GZ", Gzip, true, ""},
		{"root.tgz", Gzip, true, ""},
		{"root.txz", XZ, true, ""},
		{"root.tar", None, true, ""},
		{"root", Zstd, false, ""},
		{"root.tar.bz2", Zstd, true, "bzip2"},
		{"root.7z", Zstd, true, "7-Zip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, named, err := FromName(tt.name)
			if c != tt.want || named != tt.named {
				t.Errorf("FromName(%q) = %q, %v; want %q, %v", tt.name, c, named, tt.want, tt.named)
			}
			if (err != nil) != (tt.wantErr != "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("FromName(%q) error %v, want one naming %q", tt.name, err, tt.wantErr)
			}
			if ForPath(tt.name) != tt.want {
				t.Errorf("ForPath(%q) = %q, want %q", tt.name, ForPath(tt.name), tt.want)
			}
		})
	}
}

// Every name parses, names the suffix it is written with, and is read
// back from that suffix; a default level exists for each.
func TestNamesRoundTrip(t *testing.T) {
	for _, c := range Names {
		if got, err := Parse(string(c)); err != nil || got != c {
			t.Errorf("Parse(%q) = %q, %v", c, got, err)
		}
		if got := ForPath("x.tar" + TarSuffix(c)); got != c {
			t.Errorf("x.tar%s reads as %q, want %q", TarSuffix(c), got, c)
		}
		if _, ok := DefaultLevel[c]; !ok {
			t.Errorf("no default level for %q", c)
		}
	}
	if _, err := Parse("bzip2"); err == nil {
		t.Error("Parse(bzip2) accepted")
	}
}
