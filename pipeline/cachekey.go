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

func isOutputOnly(s BuildStep) bool {
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
