package pipeline

import (
	"bytes"
	"context"
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/krgimage/krgimage/kernel"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/stagecache"
)

// cacheKeyer is a step whose result the stage cache can keep. addKey adds
// to k everything the step's result depends on besides the image root it
// starts from (whose key k already holds): its recipe section, the files
// it reads, the package indices it installs from. A step without addKey is
// never cached, and neither is any step after it.
type cacheKeyer interface {
	addKey(ctx context.Context, env *Env, k *stagecache.Key, rel *releases) error
}

// outputOnly marks the steps that read the image root and write only to
// the output directory. The cache keys the root without them; they run
// again on every build (the snapshot excepted: see stageCache).
type outputOnly interface{ outputOnly() }

func (*netbootStep) outputOnly()  {}
func (*mediaStep) outputOnly()    {}
func (*snapshotStep) outputOnly() {}

func isOutputOnly(s Step) bool {
	_, ok := s.(outputOnly)
	return ok
}

// recipeContext is what every step inside the image may read beyond its
// own section: the recipe's top-level keys, the sections owned by other
// steps left out, and the mirror the build uses. Keys added to the recipe
// later are in it by default: a step is rerun rather than wrongly reused.
func recipeContext(env *Env) []byte {
	var b bytes.Buffer
	canonicalExcept(&b, reflect.ValueOf(*env.Recipe), "Description", "Bootstrap", "Provision", "Kernel", "Initramfs", "Netboot", "BootTest", "Outputs")
	fmt.Fprintf(&b, "mirror=%q security=%q", env.Mirror.URL, env.Mirror.Security)
	return b.Bytes()
}

func (*bootstrapStep) addKey(ctx context.Context, env *Env, k *stagecache.Key, rel *releases) error {
	r := env.Recipe
	k.AddBytes("bootstrap", canonical(struct {
		Suite, Architecture, Variant string
		Components                   []string
		Insecure, Archived           bool
		Bootstrap                    recipes.Bootstrap
	}{r.Suite, r.Architecture, r.Variant, r.Components, r.Insecure, r.Archived, r.Bootstrap}))
	k.Add("mirror", env.Mirror.URL)
	if r.Keyring != "" {
		if err := k.AddPath("keyring", r.Path(r.Keyring)); err != nil {
			return err
		}
	}
	l, path, err := findLock(r)
	if err != nil {
		return err
	}
	if l != nil {
		// The lockfile pins every package: it, not the mirror's state,
		// says what is installed.
		return k.AddPath("lockfile", path)
	}
	re, err := rel.get(ctx, env.Mirror.URL, r.Suite, r.Components, r.Architecture)
	if err != nil {
		return err
	}
	k.Add("indices", re.Indices)
	return nil
}

// lockedMirrorKey adds the suite's package indices to the key of the
// first step after a bootstrap from a lockfile. The lockfile pins the
// base system only: whatever a later step installs comes from the
// mirror's indices of the day (the native bootstrap leaves no APT lists,
// so the first apt-get fetches them), unless an apt-sources step, which
// keys its own archives, comes first.
func lockedMirrorKey(ctx context.Context, env *Env, k *stagecache.Key, rel *releases) error {
	r := env.Recipe
	if l, _, err := findLock(r); err != nil || l == nil {
		return err
	}
	re, err := rel.get(ctx, env.Mirror.URL, r.Suite, r.Components, r.Architecture)
	if err != nil {
		return err
	}
	k.Add("mirror indices", re.Indices)
	return nil
}

func (p *provisionStep) addKey(ctx context.Context, env *Env, k *stagecache.Key, rel *releases) error {
	r := env.Recipe
	k.Add("provision", p.entry.Type)
	k.AddBytes("config", canonical(p.entry.Config))
	k.AddBytes("context", recipeContext(env))
	path := func(name, p string) error {
		if p == "" {
			return nil
		}
		return k.AddPath(name, r.Path(p))
	}
	lookup := func(name string) {
		if name != "" {
			v, ok := env.LookupEnv(name)
			k.Add("env", name, strconv.FormatBool(ok), v)
		}
	}
	switch c := p.entry.Config.(type) {
	case *recipes.RootPassword:
		lookup(c.Env)
		return path("file", c.File)
	case *recipes.Users:
		for _, u := range c.Users {
			lookup(u.PasswordEnv)
			if err := path("password_file", u.PasswordFile); err != nil {
				return err
			}
			if err := path("ssh_keys_file", u.SSHKeysFile); err != nil {
				return err
			}
		}
	case *recipes.Run:
		return path("file", c.File)
	case *recipes.Files:
		for _, f := range c.Files {
			if err := path("src", f.Src); err != nil {
				return err
			}
		}
	case *recipes.AptSources:
		return aptSourcesKey(ctx, env, c, k, rel)
	}
	return nil
}

// aptSourcesKey adds the package indices of every archive the step's
// apt-get update reads: what later steps install from.
func aptSourcesKey(ctx context.Context, env *Env, c *recipes.AptSources, k *stagecache.Key, rel *releases) error {
	r := env.Recipe
	type source struct {
		uri, suite string
		comps      []string
	}
	var sources []source
	if len(c.Sources) == 0 {
		// As chroot's apt-sources step writes them.
		sources = append(sources, source{env.Mirror.URL, r.Suite, r.Components})
		sec := c.SecurityMirror
		if sec == "" {
			sec = env.Mirror.Security
		}
		if c.Security && sec != "" && r.Suite != "sid" && r.Suite != "unstable" {
			sources = append(sources, source{sec, recipes.SecuritySuite(r.Suite), r.Components})
		}
	}
	for _, line := range c.Sources {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] != "deb" {
			continue
		}
		// Options: deb [arch=amd64 signed-by=...] URI SUITE COMPONENTS.
		for len(f) > 1 && strings.HasPrefix(f[1], "[") {
			end := slices.IndexFunc(f[1:], func(s string) bool { return strings.HasSuffix(s, "]") })
			if end < 0 {
				return fmt.Errorf("apt source %q: unterminated options", line)
			}
			f = append(f[:1], f[2+end:]...)
		}
		if len(f) < 3 {
			return fmt.Errorf("apt source %q: expected deb URI SUITE COMPONENTS", line)
		}
		sources = append(sources, source{f[1], f[2], f[3:]})
	}
	for _, s := range sources {
		re, err := rel.get(ctx, strings.TrimRight(s.uri, "/"), s.suite, s.comps, r.Architecture)
		if err != nil {
			return err
		}
		k.Add("indices", s.uri, s.suite, re.Indices)
	}
	return nil
}

func (s *kernelStep) addKey(_ context.Context, env *Env, k *stagecache.Key, _ *releases) error {
	r := env.Recipe
	k.AddBytes("kernel", canonical(r.Kernel))
	k.Add("native-initramfs", strconv.FormatBool(nativeInitramfs(r)))
	k.AddBytes("context", recipeContext(env))
	src := s.sources(r)
	for _, in := range []struct{ name, path string }{{"source", src.Source}, {"linux", src.Linux}, {"config", src.Config}} {
		switch {
		case in.path == "":
		case kernel.IsURL(in.path):
			// The recipe's sha256 names the content.
			k.Add(in.name, in.path)
		default:
			if err := k.AddPath(in.name, in.path); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *initramfsStep) addKey(_ context.Context, env *Env, k *stagecache.Key, _ *releases) error {
	r := env.Recipe
	k.AddBytes("initramfs", canonical(r.Initramfs))
	k.Add("default-nics", strconv.FormatBool(!r.Written("initramfs.nics")))
	k.AddBytes("context", recipeContext(env))
	if b := r.Initramfs.Busybox; b != "" {
		if err := k.AddPath("busybox", r.Path(b)); err != nil {
			return err
		}
	}
	for _, f := range r.Initramfs.Files {
		if err := k.AddPath("file", r.Path(f.Src)); err != nil {
			return err
		}
	}
	return nil
}

// canonical encodes v so that equal values, and only they, encode alike:
// struct fields by name, map entries sorted, pointers followed. Secrets
// are encoded in clear (only their digest ever leaves the build), so that
// a new password hash is a new key.
func canonical(v any) []byte {
	var b bytes.Buffer
	encodeCanonical(&b, reflect.ValueOf(v))
	return b.Bytes()
}

// canonicalExcept encodes the struct v without the named fields.
func canonicalExcept(b *bytes.Buffer, v reflect.Value, skip ...string) {
	b.WriteString("{")
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() || f.Tag.Get("yaml") == "-" || slices.Contains(skip, f.Name) {
			continue
		}
		b.WriteString(f.Name + ":")
		encodeCanonical(b, v.Field(i))
		b.WriteString(",")
	}
	b.WriteString("}")
}

var (
	secretType        = reflect.TypeFor[recipes.Secret]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func encodeCanonical(b *bytes.Buffer, v reflect.Value) {
	if !v.IsValid() {
		b.WriteString("nil")
		return
	}
	if v.Type() == secretType {
		b.WriteString(strconv.Quote(v.String()))
		return
	}
	if v.Type().Implements(textMarshalerType) && v.CanInterface() && !(v.Kind() == reflect.Pointer && v.IsNil()) {
		t, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			fmt.Fprintf(b, "!%q", err.Error())
			return
		}
		b.WriteString(strconv.Quote(string(t)))
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		b.WriteString("&")
		encodeCanonical(b, v.Elem())
	case reflect.Struct:
		canonicalExcept(b, v)
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(x, y reflect.Value) int { return strings.Compare(fmt.Sprint(x), fmt.Sprint(y)) })
		b.WriteString("map{")
		for _, key := range keys {
			encodeCanonical(b, key)
			b.WriteString(":")
			encodeCanonical(b, v.MapIndex(key))
			b.WriteString(",")
		}
		b.WriteString("}")
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			b.WriteString("nil")
			return
		}
		b.WriteString("[")
		for i := range v.Len() {
			encodeCanonical(b, v.Index(i))
			b.WriteString(",")
		}
		b.WriteString("]")
	case reflect.String:
		b.WriteString(strconv.Quote(v.String()))
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		b.WriteString(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	default:
		// Channels and functions have no place in a recipe.
		fmt.Fprintf(b, "?%s", v.Kind())
	}
}
