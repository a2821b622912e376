package chroot

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/krgimage/krgimage/internal/quote"
)

// setShellVar sets KEY=value in a shell-style configuration file, replacing
// the first (possibly commented) assignment, or appending one.
func setShellVar(content, key, value string) string {
	re := regexp.MustCompile(`(?m)^[ \t]*#?[ \t]*` + regexp.QuoteMeta(key) + `=.*$`)
	line := key + "=" + quote.Shell(value)
	if loc := re.FindStringIndex(content); loc != nil {
		return content[:loc[0]] + line + content[loc[1]:]
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return content + line + "\n"
}

// SetShellVars sets KEY=value lines, in sorted order, in a shell-style
// configuration file of the image (/etc/default/rcS, initramfs.conf),
// keeping the rest. The file must exist: a missing one means the package
// that reads it is not installed.
func (s *Session) SetShellVars(path string, vars map[string]string) error {
	b, err := s.ReadFile(path)
	if err != nil {
		return err
	}
	if b == nil {
		return fmt.Errorf("%w: %s does not exist in the image", ErrMissing, path)
	}
	content := string(b)
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		content = setShellVar(content, k, vars[k])
	}
	return s.WriteFile(path, []byte(content), 0o644, "root", "root")
}
