package debarchive

import (
	"errors"
	"strings"
	"testing"
)

func TestDeb822(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"plain", "deb http://m/debian bookworm main contrib",
			"Types: deb\nURIs: http://m/debian\nSuites: bookworm\nComponents: main contrib\n"},
		{"options by their field names", "deb [signed-by=/k.gpg arch=amd64,i386 foo=bar] http://m/debian bookworm main",
			"Types: deb\nURIs: http://m/debian\nSuites: bookworm\nComponents: main\nArchitectures: amd64,i386\nfoo: bar\nSigned-By: /k.gpg\n"},
		{"flat repository", "deb-src http://m/repo ./ # no components",
			"Types: deb-src\nURIs: http://m/repo\nSuites: ./\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseLine(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Deb822(); got != tt.want {
				t.Errorf("Deb822() = %q, want %q", got, tt.want)
			}
		})
	}
}

// Options a deb822 stanza could not hold as themselves are refused, so
// that the two formats describe the same sources.
func TestParseLineRefuses(t *testing.T) {
	for _, bad := range []string{
		"deb [types=deb-src] http://m/debian bookworm main",
		"deb [architectures=amd64] http://m/debian bookworm main",
		"deb [a:b=c] http://m/debian bookworm main",
		"deb [=c] http://m/debian bookworm main",
		"deb [] [http://m/debian bookworm main",
		"deb http://m/debian bookworm # main",
		"",
	} {
		if e, err := ParseLine(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseLine(%q) = %+v, %v; want ErrSyntax", bad, e, err)
		}
	}
}

func TestParseDeb822Options(t *testing.T) {
	es, err := ParseDeb822(strings.NewReader("Types: deb\nURIs: http://m\nSuites: a\nComponents: main\nArchitectures: amd64\n i386\nTrusted: yes\n"), "s")
	if err != nil {
		t.Fatal(err)
	}
	if got := es[0].Options; got["arch"] != "amd64,i386" || got["trusted"] != "yes" || len(got) != 2 {
		t.Errorf("Options = %v, want arch=amd64,i386 trusted=yes", got)
	}
}
