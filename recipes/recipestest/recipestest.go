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
// step gives it to /tmp as it is.
type Values struct {
	Name, Path, Option, Label, Arg, Clients, TFTPOptions, MountOptions string
}

// Seeds are values every fuzz target starts from: the review's findings,
// the seed's own values and values at the edge of what validates.
var Seeds = []Values{
	{"kerrighed", "/NFSROOT/kerrighed", "rw", "kerrighed", "session_id=1", "*", "--secure", "rw,hard,nolock"},
	{"a.b+c-d_e", "/srv/nfs@x=y~z+w", "timeo=14", "a.b+c", "x=/a:b,c%d^e~f@g", "10.0.0.0/24", "--secure -v", "rw,noatime"},
	{"base\ninjected", "/srv/nfs\n/ *(rw,no_root_squash,insecure)\n#", "rw\"", "node\nKERNEL evil", "a;reboot", "* evil(rw)", "--secure $(id>/tmp/x)", "rw nosuid"},
	{"x", `/srv/nfs"; next-server 6.6.6.6; #`, "ro) / *(rw", "l b", "$root", "*(rw)", "`id`", "rw\nnone / tmpfs"},
	// An option with a comma was written as one and read back as two.
	{"kerrighed", "/NFSROOT/kerrighed", "a,b", "kerrighed", "session_id=1", "*", "--secure", "rw,hard,nolock"},
	// An empty mount option made fstab's options field empty.
	{"kerrighed", "/NFSROOT/kerrighed", "rw", "kerrighed", "session_id=1", "*", "--secure", "rw,,hard"},
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
  exports: {clients: ` + q(v.Clients) + `, options: [ro, ` + q(v.Option) + `]}
  media: {kind: isolinux, uefi: true}
`
	return recipes.Parse([]byte(src), "fuzz.yaml", recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
}
