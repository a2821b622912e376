package initramfs

import (
	"slices"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/confread"
)

// FuzzConfig: initramfs.conf, which /init sources, reads back as exactly
// its five assignments, whatever the values (validation keeps newlines
// out of them before they get here).
func FuzzConfig(f *testing.F) {
	f.Add("6.1.0-50-amd64", "ro", "timeo=14")
	f.Add("6.1.0$(reboot)", "rw;x", "a b`id`")
	f.Fuzz(func(t *testing.T, kernel, mode, opts string) {
		if strings.ContainsAny(kernel+mode+opts, "\n") || mode == "" {
			return
		}
		text := config(Options{Kernel: kernel, Mode: mode, NFSVersion: 4, NFSOptions: []string{opts}})
		got, err := confread.Shell(text)
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		want := []confread.Assign{{Name: "KRG_KERNEL", Value: kernel}, {Name: "KRG_DEFAULT_NFS_VERSION", Value: "4"},
			{Name: "KRG_DEFAULT_MODE", Value: mode}, {Name: "KRG_DEFAULT_NFS_OPTIONS", Value: opts}, {Name: "KRG_ATTEMPTS", Value: "3"}}
		if !slices.Equal(got, want) {
			t.Fatalf("%+v, want %+v", got, want)
		}
	})
}
