package provision

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// secret reads a password hash from the recipe, a file or a variable.
func secret(img *Image, inline, file, env string) (string, error) {
	var v string
	switch {
	case inline != "":
		v = inline
	case file != "":
		b, err := os.ReadFile(img.Recipe.Path(file))
		if err != nil {
			return "", err
		}
		v = strings.TrimSpace(string(b))
	case env != "":
		val, ok := img.LookupEnv(env)
		if !ok || val == "" {
			return "", fmt.Errorf("%w: $%s is not set", chroot.ErrMissing, env)
		}
		v = strings.TrimSpace(val)
	default:
		return "", nil
	}
	if !recipes.ValidHash(v) {
		// Never echo it: it may be a password typed in the wrong place.
		return "", fmt.Errorf("the value is not a crypt(3) hash (make one with mkpasswd); plain-text passwords are refused")
	}
	return v, nil
}

// setHash gives chpasswd the hash on stdin, so it never appears in a
// command line or a log.
func setHash(ctx context.Context, s *chroot.Session, user, hash string) error {
	return s.RunCommand(ctx, chroot.Command{Argv: []string{"chpasswd", "-e"}, Stdin: strings.NewReader(user + ":" + hash + "\n")})
}
