package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/recipes"
)

func TestResolveMirror(t *testing.T) {
	host := t.TempDir()
	os.MkdirAll(filepath.Join(host, "etc/apt/sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(host, "etc/apt/sources.list.d/debian.sources"), []byte(
		"Types: deb\nURIs: http://host.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"+
			"Types: deb\nURIs: http://host.example/debian-security\nSuites: bookworm-security\nComponents: main\n"), 0o644)
	empty := t.TempDir()
	load := func(src string) *recipes.Recipe {
		r, err := recipes.Parse([]byte(src), "r.yaml", recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	withMirror := load("suite: lenny\nmirror: http://recipe.example/debian\n")
	without := load("suite: bookworm\n")
	tests := []struct {
		name       string
		in         MirrorInputs
		r          *recipes.Recipe
		url, from  string
		security   string
		wantErr    error
		errContain string
	}{
		{"flag wins", MirrorInputs{Flag: "http://flag.example/debian/", Env: "http://env.example/debian", HostRoot: host}, withMirror, "http://flag.example/debian", "--mirror", "http://flag.example/debian-security", nil, ""},
		{"env next", MirrorInputs{Env: "http://env.example/debian", HostRoot: host}, withMirror, "http://env.example/debian", "KRGIMAGE_MIRROR", "http://env.example/debian-security", nil, ""},
		{"recipe next", MirrorInputs{HostRoot: host}, withMirror, "http://recipe.example/debian", "recipe r.yaml:2", "http://recipe.example/debian-security", nil, ""},
		{"host last", MirrorInputs{HostRoot: host}, without, "http://host.example/debian", "host APT configuration " + host + "/etc/apt/sources.list.d/debian.sources:1", "http://host.example/debian-security", nil, ""},
		{"nothing", MirrorInputs{HostRoot: empty}, without, "", "", "", ErrNoMirror, "KRGIMAGE_MIRROR"},
		{"bad flag", MirrorInputs{Flag: "mirror.example"}, without, "", "", "", nil, "expected an http, https or file URL"},
		{"file mirror", MirrorInputs{Flag: "file:///srv/mirror"}, without, "file:///srv/mirror", "--mirror", "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ResolveMirror(tt.in, tt.r)
			if tt.wantErr != nil || tt.errContain != "" {
				if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.errContain) {
					t.Fatalf("ResolveMirror() = %v, want %v mentioning %q", err, tt.wantErr, tt.errContain)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.URL != tt.url || m.Source != tt.from || m.Security != tt.security {
				t.Errorf("ResolveMirror() = %+v, want %s from %q, security %q", m, tt.url, tt.from, tt.security)
			}
		})
	}
}
