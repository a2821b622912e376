package debarchive

import (
	"strings"
	"testing"
)

func TestNamesSuite(t *testing.T) {
	tests := []struct {
		suite, relSuite, codename string
		want                      bool
	}{
		{"bookworm", "stable", "bookworm", true},
		{"stable", "stable", "bookworm", true},
		{"lenny/updates", "oldstable", "lenny", true},
		{"bookworm-security", "stable-security", "bookworm-security", true},
		{"bookworm", "oldstable", "bullseye", false},
		{"bookworm-security", "stable", "bookworm", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		if got := namesSuite(&Release{Suite: tt.relSuite, Codename: tt.codename}, tt.suite); got != tt.want {
			t.Errorf("namesSuite(%s/%s, %s) = %v, want %v", tt.relSuite, tt.codename, tt.suite, got, tt.want)
		}
	}
}

func TestParseMirror(t *testing.T) {
	for s, ok := range map[string]bool{
		"http://deb.example/debian/": true, "https://u:p@deb.example/debian": true, "file:///srv/mirror": true,
		"": false, "deb.example/debian": false, "ftp://deb.example/debian": false, "http:///debian": false, "http://%zz": false,
	} {
		u, err := ParseMirror(s)
		if (err == nil) != ok {
			t.Errorf("ParseMirror(%q) = %v, want ok %v", s, err, ok)
			continue
		}
		if ok && strings.HasSuffix(u.Path, "/") {
			t.Errorf("ParseMirror(%q) keeps the trailing slash: %s", s, u)
		}
	}
}
