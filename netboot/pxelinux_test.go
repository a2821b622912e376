package netboot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindPXELinux(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   []string
		pxe, ld string
		err     string
	}{
		{"nothing", nil, "", "", "install pxelinux and syslinux-common"},
		{"syslinux 6 without syslinux-common", []string{"usr/lib/PXELINUX/pxelinux.0"}, "", "", "needs ldlinux.c32 (package syslinux-common)"},
		{"syslinux 6", []string{"usr/lib/PXELINUX/pxelinux.0", "usr/lib/syslinux/modules/bios/ldlinux.c32"},
			"usr/lib/PXELINUX/pxelinux.0", "usr/lib/syslinux/modules/bios/ldlinux.c32", ""},
		{"lenny's syslinux 3", []string{"usr/lib/syslinux/pxelinux.0"}, "usr/lib/syslinux/pxelinux.0", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tc.files {
				os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755)
				if err := os.WriteFile(filepath.Join(root, f), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			pxe, ld, err := FindPXELinux(root)
			if tc.err != "" {
				if !errors.Is(err, ErrNoPXELinux) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want ErrNoPXELinux saying %q", err, tc.err)
				}
				return
			}
			rel := func(p string) string {
				if p == "" {
					return ""
				}
				r, _ := filepath.Rel(root, p)
				return r
			}
			if err != nil || rel(pxe) != tc.pxe || rel(ld) != tc.ld {
				t.Errorf("= %q %q %v, want %q %q", rel(pxe), rel(ld), err, tc.pxe, tc.ld)
			}
		})
	}
}
