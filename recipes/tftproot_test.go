package recipes

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCheckTFTPRoot(t *testing.T) {
	for _, tt := range []struct {
		dir string
		ok  bool
	}{
		{"/srv/tftp", true},
		{"/var/lib/tftpboot", true},
		{"/tftpboot", true},
		{"/srv/tftp/", true},
		{"/usr/lib/tftpboot", true},
		{"/", false},
		{"//", false},
		{"/.", false},
		{"", false},
		{"srv/tftp", false},
		{"/srv/../etc", false},
		{"/srv/tftp/..", false},
		{"/etc", false},
		{"/etc/", false},
		{"/./etc", false},
		{"/etc/tftp", false},
		{"/boot", false},
		{"/bin", false},
		{"/sbin", false},
		{"/lib", false},
		{"/lib64", false},
		{"/libx32", false},
		{"/usr", false},
		{"/usr/lib", false},
		{"/usr/lib64", false},
		{"/usr/share", false},
		{"/var", false},
		{"/var/lib", false},
		{"/var/tmp", false},
		{"/tmp", false},
		{"/root", false},
		{"/home", false},
		{"/srv", false},
		{"/dev", false},
		{"/dev/shm/tftp", false},
		{"/proc/self/cwd", false},
		{"/sys/fs", false},
		{"/run/tftp", false},
	} {
		t.Run(tt.dir, func(t *testing.T) {
			err := CheckTFTPRoot(tt.dir)
			if tt.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrUnsafeTFTPRoot) {
				t.Errorf("error = %v, want ErrUnsafeTFTPRoot", err)
			}
		})
	}
}

// validate refuses a system directory as tftp.root, at the line and
// column where it is written.
func TestValidateTFTPRoot(t *testing.T) {
	for _, root := range []string{"/", "/etc", "/boot", "/usr/lib", "/var/", `""`} {
		t.Run(root, func(t *testing.T) {
			src := strings.Replace(hostileBase, "tftp: {root: /srv/tftp}", "tftp:\n    root: "+root, 1)
			_, err := parse(t, src, nil)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("tftp.root %s: error %v, want ErrInvalid", root, err)
			}
			line := 1 + strings.Count(src[:strings.Index(src, "root: "+root)], "\n")
			want := fmt.Sprintf("test.yaml:%d:11: netboot.tftp.root: invalid tftp root", line)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		})
	}
	// A TFTP tree that holds the image, or sits inside it, is refused.
	for _, root := range []string{"/srv/nfs", "/srv/nfs/tftp", "/srv/nfs/"} {
		src := strings.Replace(hostileBase, "tftp: {root: /srv/tftp}", "tftp: {root: "+root+"}", 1)
		if _, err := parse(t, src, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "overlaps nfsroot.path") {
			t.Errorf("tftp.root %s beside nfsroot.path /srv/nfs: %v", root, err)
		}
	}
	src := strings.Replace(hostileBase, "tftp: {root: /srv/tftp}", "tftp: {root: /srv/nfs-tftp}", 1)
	if _, err := parse(t, src, nil); err != nil {
		t.Errorf("a sibling of the NFS root is a fine tftp.root: %v", err)
	}
	// A relative root is the confpath check's, reported once.
	src = strings.Replace(hostileBase, "tftp: {root: /srv/tftp}", "tftp: {root: srv/tftp}", 1)
	_, err := parse(t, src, nil)
	if err == nil || strings.Count(err.Error(), "netboot.tftp.root") != 1 {
		t.Errorf("relative root: %v", err)
	}
}

// A boot test serves the build otherwise than the recipe says; the
// recipe it was given must not change under it.
func TestWithNetbootLeavesTheRecipe(t *testing.T) {
	r := &Recipe{Netboot: &Netboot{TFTP: TFTP{Root: "/srv/tftp"}}}
	c := r.WithNetboot(func(nb *Netboot) { nb.TFTP.Root = "/tmp/served"; nb.HTTP = &HTTP{Port: 8080} })
	if r.Netboot.TFTP.Root != "/srv/tftp" || r.Netboot.HTTP != nil {
		t.Errorf("the recipe changed: %+v", r.Netboot)
	}
	if c.Netboot.TFTP.Root != "/tmp/served" || c.Netboot.HTTP == nil || c == r {
		t.Errorf("the copy: %+v", c.Netboot)
	}
}
