package debarchive

import "testing"

func TestSecuritySuite(t *testing.T) {
	tests := []struct {
		suite string
		major int
		want  string
	}{
		{"lenny", 5, "lenny/updates"},
		{"squeeze", 6, "squeeze/updates"},
		{"buster", 10, "buster/updates"},
		{"bullseye", 11, "bullseye-security"},
		{"bookworm", 12, "bookworm-security"},
		{"trixie", 13, "trixie-security"},
		{"testing", 99, "testing-security"},
	}
	for _, tt := range tests {
		t.Run(tt.suite, func(t *testing.T) {
			got := SecuritySuite(tt.suite, tt.major)
			if got != tt.want {
				t.Errorf("SecuritySuite(%q, %d) = %q, want %q", tt.suite, tt.major, got, tt.want)
			}
			if !IsSecuritySuite(got) {
				t.Errorf("IsSecuritySuite(%q) = false", got)
			}
			if IsSecuritySuite(tt.suite) {
				t.Errorf("IsSecuritySuite(%q) = true for the release itself", tt.suite)
			}
		})
	}
}
