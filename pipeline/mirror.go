package pipeline

import (
	"errors"
	"fmt"
	"strings"

	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/recipes"
)

// Mirror is the Debian mirror a build uses and where that choice came
// from, recorded in build.json.
type Mirror struct {
	URL    string `json:"url"`
	Source string `json:"source"`
	// Security is the security archive, when known.
	Security string `json:"security,omitempty"`
}

// ErrNoMirror is returned when no mirror is configured anywhere.
var ErrNoMirror = errors.New("no Debian mirror configured")

// MirrorInputs are the places a mirror can come from, in order of
// precedence: --mirror, KRGIMAGE_MIRROR, the recipe, the host's APT
// configuration under HostRoot.
type MirrorInputs struct {
	Flag     string
	Env      string
	HostRoot string
}

// ResolveMirror picks the build's mirror.
func ResolveMirror(in MirrorInputs, r *recipes.Recipe) (Mirror, error) {
	check := func(m Mirror) (Mirror, error) {
		if _, err := debarchive.ParseMirror(m.URL); err != nil {
			return Mirror{}, fmt.Errorf("mirror %q from %s: %w", debarchive.RedactURL(m.URL), m.Source, err)
		}
		// As given: the URL is part of cache keys.
		m.URL = strings.TrimRight(m.URL, "/")
		return m, nil
	}
	var host []debarchive.Entry
	hostErr := error(nil)
	if in.HostRoot != "" {
		host, hostErr = debarchive.ReadHost(in.HostRoot)
	}
	switch {
	case in.Flag != "":
		return check(Mirror{URL: in.Flag, Source: "--mirror", Security: securityBeside(in.Flag)})
	case in.Env != "":
		return check(Mirror{URL: in.Env, Source: "KRGIMAGE_MIRROR", Security: securityBeside(in.Env)})
	case r.Mirror != "":
		p := r.Pos("mirror")
		return check(Mirror{URL: r.Mirror, Source: fmt.Sprintf("recipe %s:%d", r.Source, p.Line), Security: securityBeside(r.Mirror)})
	}
	if hostErr != nil {
		return Mirror{}, fmt.Errorf("reading the host's APT configuration: %w", hostErr)
	}
	uri, e, ok := debarchive.Archive(host, "")
	if !ok {
		return Mirror{}, fmt.Errorf("%w: give --mirror, set KRGIMAGE_MIRROR or the recipe's mirror:, or configure a Debian archive in this host's APT sources", ErrNoMirror)
	}
	security, _, ok := debarchive.Archive(host, "security")
	if !ok {
		security = securityBeside(uri)
	}
	return check(Mirror{URL: uri, Source: fmt.Sprintf("host APT configuration %s:%d", e.File, e.Line), Security: security})
}

// securityBeside guesses the security archive of a mirror laid out like
// Debian's own and its archive mirror: .../debian-security next to
// .../debian. It returns "" when the layout is different.
func securityBeside(mirror string) string {
	m := strings.TrimRight(mirror, "/")
	if strings.HasSuffix(m, "/debian") {
		return m + "-security"
	}
	return ""
}
