package recipes

import (
	"regexp"
	"strings"
)

// The classes of recipe text that reach a generated file, each held to
// what its target format can carry unquoted. The writers quote anyway
// (internal/quote); validation is what says, with the line and column,
// that a value cannot be written at all.
var (
	// confPathRE: a path written into exports, dhcpd.conf's root-path,
	// the kernel's nfsroot= (where a comma starts the options and a colon
	// ends the server), fstab, pxelinux and GRUB lines, passwd fields.
	confPathRE = regexp.MustCompile(`^/[A-Za-z0-9._+@=~/-]*$`)
	// argRE: one word of a kernel command line: no quote, no space,
	// nothing a boot loader or a shell would read (GRUB: ; $ { };
	// pxelinux: none of them either).
	argRE = regexp.MustCompile(`^[A-Za-z0-9._+,=:@%/~^-]+$`)
	// optionRE: one mount or export option. The writers join a list of
	// them with commas (fstab, exports, nfsroot=, initramfs.conf), so a
	// comma in one would read back as two options.
	optionRE = regexp.MustCompile(`^[A-Za-z0-9._+=:@%/~^-]+$`)
	// labelRE: a boot loader label or menu entry id.
	labelRE = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)
	// imageNameRE: the image's name, in file names and file headers.
	imageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)
	moduleRE    = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	localeRE    = regexp.MustCompile(`^[A-Za-z0-9._@-]+$`)
)

// checkText says what a value of class check must be, or "" when it is
// one (or the class is not a text class).
func checkText(check, s string) string {
	switch check {
	case "confpath":
		if !confPathRE.MatchString(s) || hasDotDot(s) {
			return "an absolute path of letters, digits and . _ + @ = ~ - / (no .., spaces, quotes, commas or colons: it is written into exports, dhcpd.conf, fstab and the kernel's nfsroot=)"
		}
	case "arg":
		if !argRE.MatchString(s) {
			return "one word of letters, digits and . _ + , = : @ % / ~ ^ - (no spaces, quotes, ; $ { } or other characters a boot loader or shell reads)"
		}
	case "option":
		if !optionRE.MatchString(s) {
			return "one option of letters, digits and . _ + = : @ % / ~ ^ - (no commas: options are joined with commas, so give each as its own list item)"
		}
	case "options":
		for _, o := range strings.Split(s, ",") {
			if !optionRE.MatchString(o) {
				return "options of letters, digits and . _ + = : @ % / ~ ^ -, separated by single commas, such as rw,hard,nolock (no empty option, no spaces or quotes)"
			}
		}
	case "words":
		for _, w := range strings.Split(s, " ") {
			if !argRE.MatchString(w) {
				return "words of letters, digits and . _ + , = : @ % / ~ ^ -, separated by single spaces (it is read by a shell)"
			}
		}
	case "label":
		if !labelRE.MatchString(s) {
			return "one word of letters, digits and . _ + -"
		}
	case "name":
		if !imageNameRE.MatchString(s) {
			return "a name of letters, digits and . _ + -, starting with a letter or digit, at most 64 characters"
		}
	case "module":
		if !moduleRE.MatchString(s) {
			return "a kernel module name (letters, digits, _ and -)"
		}
	case "locale":
		if !localeRE.MatchString(s) {
			return "a locale name such as C or en_US.UTF-8"
		}
	case "gecos":
		if strings.ContainsRune(s, ':') {
			return "a comment without ':' (it is a field of /etc/passwd)"
		}
	}
	return ""
}
