package recipes

import "testing"

// The suites the security rule turns on, by name, as apt-sources and the
// cache key ask for them.
func TestSecuritySuite(t *testing.T) {
	for suite, want := range map[string]string{
		"lenny":    "lenny/updates",
		"squeeze":  "squeeze/updates",
		"buster":   "buster/updates",
		"bullseye": "bullseye-security",
		"bookworm": "bookworm-security",
		"trixie":   "trixie-security",
		"newsuite": "newsuite-security",
	} {
		t.Run(suite, func(t *testing.T) {
			if got := SecuritySuite(suite); got != want {
				t.Errorf("SecuritySuite(%q) = %q, want %q", suite, got, want)
			}
		})
	}
}
