package debarchive

import "testing"

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
