package recipes

import (
	"errors"
	"strings"
	"testing"
)

// apt-sources lines are read by the parser provisioning uses: what it
// refuses, validation refuses, at the line's position.
func TestAptSourcesLines(t *testing.T) {
	tests := []struct {
		name, line string
		ok         bool
	}{
		{"plain", "deb http://m/debian bookworm main", true},
		{"options", "deb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main contrib", true},
		{"source line with a comment", "deb-src http://m/debian bookworm main # sources", true},
		{"flat repository", "deb http://m/repo ./", true},
		{"no component", "deb http://m/debian bookworm", false},
		{"not a source type", "rpm http://m/debian bookworm main", false},
		{"unterminated options", "deb [arch=amd64 http://m/debian bookworm main", false},
		{"option without a value", "deb [trusted] http://m/debian bookworm main", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(hostileBase, "  - fstab: {configfs: false}",
				"  - apt-sources: {sources: ['"+tt.line+"']}\n  - fstab: {configfs: false}", 1)
			_, err := parse(t, src, nil)
			switch {
			case tt.ok && err != nil:
				t.Errorf("%q refused: %v", tt.line, err)
			case !tt.ok && !errors.Is(err, ErrInvalid):
				t.Errorf("%q: got %v, want ErrInvalid", tt.line, err)
			case !tt.ok && !strings.Contains(err.Error(), "provision[0].apt-sources.sources[0]: "):
				t.Errorf("%q: error %q does not name the line", tt.line, err)
			}
		})
	}
}
