package mounts

import (
	"fmt"
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

// FuzzParse holds Parse to what mountinfo is: one mount a line, and
// fields that, escaped as the kernel escapes them, parse back to
// themselves. under returns only what is at or below its directory,
// deepest first.
func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("1 2 0:1 / /a\\134040b rw - tmpfs s\\011rc rw\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		if lines := countLines(s); len(ms) != lines {
			t.Fatalf("%d mounts from %d lines", len(ms), lines)
		}
		for _, m := range ms {
			line := "1 2 0:1 / " + escape(m.Point) + " rw - " + m.FSType + " " + escape(m.Source) + " rw\n"
			again, err := Parse(strings.NewReader(line))
			if err != nil || len(again) != 1 || again[0] != m {
				t.Fatalf("%+v written as %q parses to %+v, %v", m, line, again, err)
			}
		}
		got := under(ms, "/x")
		for i, p := range got {
			if p != "/x" && !strings.HasPrefix(p, "/x/") {
				t.Errorf("under(/x) returns %q", p)
			}
			if i > 0 && strings.Count(p, "/") > strings.Count(got[i-1], "/") {
				t.Errorf("under(/x) = %q: not deepest first", got)
			}
		}
	})
}

// escape is the kernel's octal escape of a mountinfo field, here of every
// byte that is not printable ASCII, so that no space of any kind is left
// for strings.Fields to split on.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '\\' || c >= 0x7f {
			fmt.Fprintf(&b, "\\%03o", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// countLines counts lines as bufio.ScanLines does: a last line needs no
// newline.
func countLines(s string) int {
	n := strings.Count(s, "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}
