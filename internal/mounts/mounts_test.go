package mounts

import (
	"slices"
	"strings"
	"testing"
)

const sample = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:5 / /srv/img/rootfs/proc rw - proc proc rw
41 22 0:6 / /srv/img/rootfs/dev rw - devtmpfs udev rw
42 41 0:7 / /srv/img/rootfs/dev/pts rw - devpts devpts rw
43 22 0:8 / /srv/img/rootfs2 rw - tmpfs none rw
44 22 0:9 / /srv/with\040space rw shared:2 master:3 - tmpfs none rw
`

func TestUnder(t *testing.T) {
	ms, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if ms[5].Point != "/srv/with space" || ms[5].FSType != "tmpfs" {
		t.Errorf("escaped mount = %+v", ms[5])
	}
	got := under(ms, "/srv/img/rootfs")
	want := []string{"/srv/img/rootfs/dev/pts", "/srv/img/rootfs/proc", "/srv/img/rootfs/dev"}
	if !slices.Equal(got, want) {
		t.Errorf("under() = %q, want %q (deepest first, and not rootfs2)", got, want)
	}
	if _, err := Parse(strings.NewReader("1 2 3\n")); err == nil {
		t.Error("Parse() accepted a short line")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := Parse(strings.NewReader(s))
		if err == nil {
			_ = under(ms, "/x")
		}
	})
}
