package recipes

import (
	"reflect"
	"testing"
	"time"
)

// A recipe without boot_test: and one with an empty section boot alike:
// the defaults have one home.
func TestDefaultBootTestIsTheEmptySection(t *testing.T) {
	r, err := parse(t, "nfsroot: {path: /x, server: 10.0.0.1}\nboot_test: {}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := DefaultBootTest(); !reflect.DeepEqual(got, r.BootTest) {
		t.Errorf("DefaultBootTest() = %+v\nboot_test: {} decodes to %+v", got, r.BootTest)
	}
	want := BootTest{Network: "user", NIC: "e1000", Memory: 1024, Timeout: Duration{10 * time.Minute}, Success: "login:", Nodes: 1}
	if got := *DefaultBootTest(); !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultBootTest() = %+v, want %+v", got, want)
	}
}

func TestDefaultBootTestIsFresh(t *testing.T) {
	a := DefaultBootTest()
	a.Memory = 1
	if b := DefaultBootTest(); b.Memory != 1024 {
		t.Errorf("changing one DefaultBootTest() changed the next: memory %d", b.Memory)
	}
}
