// Package recipestest builds recipes from untrusted values for the fuzz
// targets that hold every generated file to what its recipe asks for.
package recipestest

import (
	"strconv"
	"strings"

	"github.com/krgimage/krgimage/recipes"
)

// Values are the recipe values a fuzz target varies: the ones that reach
// the most generated files. MountOptions is fstab's options field: the
// first writable mount lists its options (none for ""), and the fstab
// step gives it to /tmp as it is. ExportOptions are the exported root's
// options, separated by spaces, so that the fuzzer orders them, drops ro
// or writes an option that begins with it (root_squash).
type Values struct {
	Name, Path, Option, Label, Arg, Clients, TFTPOptions, MountOptions, ExportOptions string
}

// Seeds are values every fuzz target starts from: the review's findings,
// the seed's own values and values at the edge of what validates.
var Seeds = []Values{
	{"kerrighed", "/NFSROOT/kerrighed", "rw", "kerrighed", "session_id=1", "*", "--secure", "rw,hard,nolock", "ro sync no_root_squash no_subtree_check"},
	// ro not first, and an option that begins with ro: the writable
	// exports once got rwot_squash.
	{"a.b+c-d_e", "/srv/nfs@x=y~z+w", "timeo=14", "a.b+c", "x=/a:b,c%d^e~f@g", "10.0.0.0/24", "--secure -v", "rw,noatime", "root_squash ro timeo=14"},
	{"base\ninjected", "/srv/nfs\n/ *(rw,no_root_squash,insecure)\n#", "rw\"", "node\nKERNEL evil", "a;reboot", "* evil(rw)", "--secure $(id>/tmp/x)", "rw nosuid", "ro rw\""},
	{"x", `/srv/nfs"; next-server 6.6.6.6; #`, "ro) / *(rw", "l b", "$root", "*(rw)", "`id`", "rw\nnone / tmpfs", "ro) / *(rw"},
	// An option with a comma was written as one and read back as two.
	{"kerrighed", "/NFSROOT/kerrighed", "a,b", "kerrighed", "session_id=1", "*", "--secure", "rw,hard,nolock", "ro a,b"},
	// An empty mount option made fstab's options field empty.
	{"kerrighed", "/NFSROOT/kerrighed", "rw", "kerrighed", "session_id=1", "*", "--secure", "rw,,hard", "ro"},
}

// list is a YAML flow list of the items of s, separated by sep; an empty
// s is an empty list.
func list(s, sep string) string {
	if s == "" {
		return "[]"
	}
	items := strings.Split(s, sep)
	for i, it := range items {
		items[i] = strconv.Quote(it)
	}
	return "[" + strings.Join(items, ", ") + "]"
}

// Recipe returns the recipe with v in place, or the validation error.
func Recipe(v Values) (*recipes.Recipe, error) {
	q := strconv.Quote
	src := `name: ` + q(v.Name) + `
suite: bookworm
components: [main]
cluster:
  domain: c.home
  server: {name: srv, ip: 10.0.0.1}
  subnet: 10.0.0.0/24
  dynamic_range: {start: 10.0.0.200, end: 10.0.0.250}
  nodes:
    - {name: n1, ip: 10.0.0.11, mac: "52:54:00:00:00:01", append: [` + q(v.Arg) + `]}
    - {name: n2, ip: 10.0.0.12}
nfsroot:
  path: ` + q(v.Path) + `
  mode: ro
  options: [` + q(v.Option) + `]
  writable:
    - {path: /var, options: ` + list(v.MountOptions, ",") + `}
    - {path: /tmp, type: tmpfs}
provision:
  - fstab: {configfs: true, options: {/tmp: ` + q(v.MountOptions) + `}}
netboot:
  tftp: {root: /srv/tftp, options: ` + q(v.TFTPOptions) + `}
  pxelinux: {label: ` + q(v.Label) + `, append: [console=ttyS0, ` + q(v.Arg) + `]}
  exports: {clients: ` + q(v.Clients) + `, options: ` + list(v.ExportOptions, " ") + `}
  media: {kind: isolinux, uefi: true}
`
	return recipes.Parse([]byte(src), "fuzz.yaml", recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
}
