package provision

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/recipes"
)

// declared is, per step type, recipe entries of that type with what the
// step must declare for each: whether it can change the kernel's
// installation and what it reads for the cache key.
var declared = map[string][]struct {
	entry         string
	changesKernel bool
	reads         []string
}{
	"root-password": {
		{"root-password: {hash: '$6$a$b'}", false, nil},
		{"root-password: {env: ROOT_HASH}", false, []string{"env ROOT_HASH"}},
		{"root-password: {file: root.hash}", false, []string{"file root.hash"}},
	},
	"users": {{"users: [{name: a, password_env: A_HASH, ssh_keys_file: keys}, {name: b, password_file: b.hash}]", false,
		[]string{"env A_HASH", "ssh_keys_file keys", "password_file b.hash"}}},
	"apt-sources": {
		{"apt-sources", true, []string{"indices http://m.example/debian bookworm [main]", "indices http://s.example/debian-security bookworm-security [main]"}},
		{"apt-sources: {security: false}", true, []string{"indices http://m.example/debian bookworm [main]"}},
		{"apt-sources: {sources: ['deb [arch=amd64] http://o.example/debian bookworm main contrib', 'deb-src http://o.example/debian bookworm main']}", true,
			[]string{"indices http://o.example/debian bookworm [main contrib]"}},
	},
	"packages":        {{"packages: [less]", true, nil}},
	"hosts":           {{"hosts: {hostname: n1}", false, nil}},
	"nfsbooted":       {{"nfsbooted", false, nil}},
	"mtab":            {{"mtab", false, nil}},
	"fstab":           {{"fstab: {swap: /dev/hda}", false, nil}},
	"rcs":             {{"rcs", false, nil}},
	"initramfs-tools": {{"initramfs-tools", true, nil}},
	"locale":          {{"locale: {generate: en_US.UTF-8}", false, nil}},
	"ssh":             {{"ssh", false, nil}},
	"run": {
		{"run: {file: script.sh}", true, []string{"file script.sh"}},
		{"run: {script: 'true', env: {A: b}}", true, nil},
	},
	"files": {
		{"files: [{src: motd, dst: /etc/motd}, {src: tree, dst: /opt/tree}]", false, []string{"src motd", "src tree"}},
		{"files: [{src: motd, dst: /etc/motd}, {src: tree, dst: /etc/modprobe.d}]", true, []string{"src motd", "src tree"}},
		{"files: [{src: tree, dst: /etc}]", true, []string{"src tree"}},
	},
	"write": {
		{"write: {path: /etc/motd, content: hi}", false, nil},
		{"write: {path: /etc/kernel-img.conf, content: 'do_symlinks = no'}", true, nil},
	},
}

// Every step type recipes knows is this package's, its configuration is
// a documented type of the step's own file (the doc comment is the
// user's reference), and its defaults build a step.
func TestRegistry(t *testing.T) {
	if got, want := slices.Sorted(maps.Keys(steps)), recipes.ProvisionTypes(); !slices.Equal(got, want) {
		t.Errorf("provision registers %v, recipes knows %v", got, want)
	}
	for _, typ := range recipes.ProvisionTypes() {
		file := strings.ReplaceAll(typ, "-", "") + ".go"
		c, _ := recipes.NewProvisionConfig(typ)
		name := reflect.TypeOf(c).Elem().Name()
		if doc := typeDoc(t, file, name); doc == "" {
			t.Errorf("step type %s: %s declares no documented type %s", typ, file, name)
		}
		if _, err := New(recipes.ProvisionEntry{Type: typ, Config: c}, &Image{Recipe: &recipes.Recipe{Suite: "bookworm"}}); err != nil {
			t.Errorf("step type %s with its defaults: %v", typ, err)
		}
	}
	if _, err := New(recipes.ProvisionEntry{Type: "mtab", Config: &Files{}}, &Image{}); err == nil {
		t.Error("New accepted a configuration of another type")
	}
}

// typeDoc returns the doc comment of the type name declared in file.
func typeDoc(t *testing.T, file, name string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		t.Error(err)
		return ""
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.TYPE {
			continue
		}
		for _, spec := range g.Specs {
			if ts := spec.(*ast.TypeSpec); ts.Name.Name == name {
				return g.Doc.Text()
			}
		}
	}
	return ""
}

// A configuration decodes over its defaults, keeps a secret unprinted
// and a script unexpanded.
func TestConfigDecoding(t *testing.T) {
	const hash = "$6$salt$abcdefghijklmnop"
	src := "suite: bookworm\nprovision:\n  - run: {script: 'echo ${HOME}'}\n  - users: [{name: krg}]\n  - root-password: {hash: '" + hash + "'}\n"
	r, err := recipes.Parse([]byte(src), "r.yaml", recipes.Options{LookupEnv: func(string) (string, bool) { return "/root", true }})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Provision[0].Config.(*Run); got.Script != "echo ${HOME}" || got.Shell != "/bin/sh" || !got.Chroot {
		t.Errorf("run: %+v, want the script unexpanded and the defaults", got)
	}
	if u := r.Provision[1].Config.(*Users).Users[0]; u.Shell != "/bin/bash" {
		t.Errorf("user shell default: %q", u.Shell)
	}
	if got := r.Provision[2].Config.(*RootPassword).Hash; got.Reveal() != hash || fmt.Sprint(got) == hash {
		t.Errorf("root-password hash: Reveal() = %q, printed %v", got.Reveal(), got)
	}
}

// TestDeclared holds every registered step type to declaring what it
// does: plan lines, whether it can change the kernel, and what it reads.
// A file Check needs must be among what Reads declares, or the stage
// cache would not see it change.
func TestDeclared(t *testing.T) {
	for _, typ := range recipes.ProvisionTypes() {
		if len(declared[typ]) == 0 {
			t.Errorf("step type %s has no entry in declared: say what it reads and whether it changes the kernel", typ)
		}
	}
	for typ, cases := range declared {
		if !slices.Contains(recipes.ProvisionTypes(), typ) {
			t.Errorf("declared names %s, which is not a step type", typ)
		}
		for _, tt := range cases {
			t.Run(tt.entry, func(t *testing.T) {
				dir, img := declaredImage(t, tt.entry)
				e := img.Recipe.Provision[0]
				if e.Type != typ {
					t.Fatalf("entry of type %s listed under %s", e.Type, typ)
				}
				s, err := New(e, img)
				if err != nil {
					t.Fatal(err)
				}
				if len(s.Describe()) == 0 {
					t.Error("Describe gives no plan line")
				}
				if got := s.ChangesKernel(); got != tt.changesKernel {
					t.Errorf("ChangesKernel() = %v, want %v", got, tt.changesKernel)
				}
				reads, err := s.Reads()
				if err != nil {
					t.Fatal(err)
				}
				if got := describeInputs(reads); !slices.Equal(got, tt.reads) {
					t.Errorf("Reads() = %q, want %q", got, tt.reads)
				}
				checkNeedsOnlyReads(t, s, dir, reads)
			})
		}
	}
}

// checkNeedsOnlyReads removes each of the recipe directory's files in
// turn: when Check then fails, Reads must have named it.
func checkNeedsOnlyReads(t *testing.T, s Step, dir string, reads []Input) {
	t.Helper()
	if err := s.Check(); err != nil {
		t.Fatalf("Check with every file present: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		aside := p + ".aside"
		if err := os.Rename(p, aside); err != nil {
			t.Fatal(err)
		}
		needed := s.Check() != nil
		if err := os.Rename(aside, p); err != nil {
			t.Fatal(err)
		}
		named := slices.ContainsFunc(reads, func(in Input) bool { return in.File == e.Name() })
		if needed && !named {
			t.Errorf("Check needs %s, but Reads does not name it: the cache key would miss its changes", e.Name())
		}
	}
}

func describeInputs(reads []Input) []string {
	var out []string
	for _, in := range reads {
		switch {
		case in.Env != "":
			out = append(out, in.Key+" "+in.Env)
		case in.File != "":
			out = append(out, in.Key+" "+in.File)
		case in.Archive != nil:
			out = append(out, fmt.Sprintf("%s %s %s %v", in.Key, in.Archive.URI, in.Archive.Suite, in.Archive.Components))
		default:
			out = append(out, "empty input "+in.Key)
		}
	}
	return out
}

// declaredImage loads a bookworm recipe holding one provision entry,
// next to the files the entries name.
func declaredImage(t *testing.T, entry string) (string, *Image) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"root.hash": "$6$a$b\n", "b.hash": "$6$c$d\n", "keys": "ssh-ed25519 AAAA k\n",
		"script.sh": "true\n", "motd": "hi\n", "tree/x": "x\n"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	src := "name: declared\nsuite: bookworm\ncluster: {server: {name: s, ip: 10.0.0.1}, subnet: 10.0.0.0/24, nodes: [{name: n1, ip: 10.0.0.11}]}\nnfsroot: {path: /srv/nfsroot/d}\nprovision:\n  - " + entry + "\n"
	os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644)
	r, err := recipes.Load(filepath.Join(dir, "r.yaml"), recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "r.yaml"))
	return dir, &Image{Recipe: r, Mirror: "http://m.example/debian", SecurityMirror: "http://s.example/debian-security"}
}
