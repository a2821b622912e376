package recipes

import (
	"errors"
	"testing"
)

func TestMediaRules(t *testing.T) {
	r, err := LoadShipped("bookworm-nfsroot", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Medium(); m != (Media{Kind: "isolinux", Output: "bookworm-nfsroot.iso"}) {
		t.Errorf("a recipe without netboot.media yields %+v", m)
	}
	for _, tt := range []struct {
		name string
		arch string
		m    Media
		want []error
	}{
		{"isolinux uefi", "amd64", Media{Kind: "isolinux", UEFI: true, Output: "a.iso"}, nil},
		{"ipxe uefi", "amd64", Media{Kind: "ipxe", UEFI: true, Output: "a.iso"}, []error{ErrInvalid}},
		{"i386 uefi", "i386", Media{Kind: "isolinux", UEFI: true, Output: "a.iso"}, []error{ErrInvalid}},
		{"arm64", "arm64", Media{Kind: "isolinux", Output: "a.iso"}, []error{ErrInvalid}},
		{"path", "amd64", Media{Kind: "isolinux", Output: "../a.iso"}, []error{ErrInvalid}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r.Architecture = tt.arch
			if (tt.m.Conflict() != nil) != (tt.m.Kind == "ipxe" && tt.m.UEFI) {
				t.Errorf("Conflict() = %v", tt.m.Conflict())
			}
			errs := r.CheckMedia(tt.m)
			if len(errs) != len(tt.want) {
				t.Fatalf("CheckMedia = %v, want %d problems", errs, len(tt.want))
			}
			for i, e := range errs {
				if !errors.Is(e, tt.want[i]) {
					t.Errorf("problem %d: %v, want %v", i, e, tt.want[i])
				}
			}
		})
	}
}
