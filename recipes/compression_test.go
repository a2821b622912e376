package recipes

import (
	"reflect"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/compression"
)

// The schema's enum is what the snapshot writer can write: a name added
// to one and not the other would pass validation and fail the build, or
// be refused though it works.
func TestSnapshotCompressionEnum(t *testing.T) {
	f, ok := reflect.TypeFor[SnapshotOutput]().FieldByName("Compression")
	if !ok {
		t.Fatal("SnapshotOutput has no Compression field")
	}
	var want []string
	for _, c := range compression.Names {
		want = append(want, string(c))
	}
	if got := f.Tag.Get("enum"); got != strings.Join(want, ",") {
		t.Errorf("enum %q, want %q", got, strings.Join(want, ","))
	}
}
