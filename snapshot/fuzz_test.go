package snapshot

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedArchives adds the hostile corpus and a few valid archives.
func seedArchives(f *testing.F) {
	f.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "hostile", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add(hostileTar(f, hostileEntry{name: "./", typ: typeDir}, hostileEntry{name: "./a", typ: typeReg, data: "x"},
		hostileEntry{name: "./l", typ: typeSymlink, link: "a"}, hostileEntry{name: "./h", typ: typeLink, link: "./a"},
		hostileEntry{name: "./s", typ: typeReg, size: 9000, data: "abc", sparse: []segment{{4096, 3}}},
		hostileEntry{name: "./x", typ: typeReg, data: "y", pax: map[string]string{"SCHILY.xattr.user.a": "b", paxACLAccess: "user::rw-\nuser:7:r--\ngroup::r--\nmask::r--\nother::---\n"}}))
}

// FuzzTarReader reads arbitrary bytes as an archive: errors are fine,
// panics, hangs and unbounded allocations are not.
func FuzzTarReader(f *testing.F) {
	seedArchives(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := newTarReader(bytes.NewReader(data))
		for i := 0; i < 1000; i++ {
			h, err := tr.Next()
			if err != nil {
				return
			}
			if h.Size < 0 {
				t.Fatalf("negative size %d", h.Size)
			}
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return
			}
		}
	})
}

// FuzzRestore restores arbitrary bytes: whatever happens, nothing may
// appear outside the target, and a failed restore leaves nothing at all.
func FuzzRestore(f *testing.F) {
	seedArchives(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		canary := filepath.Join(base, "canary")
		if err := os.WriteFile(canary, []byte("canary"), 0o644); err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(base, "root")
		_, err := RestoreReader(t.Context(), bytes.NewReader(data), root, RestoreOptions{NoSync: true, Threads: 1})
		left, _ := os.ReadDir(base)
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		want := "canary"
		if err == nil {
			want = "canary root"
		}
		if got := strings.Join(names, " "); got != want {
			t.Fatalf("after Restore() = %v, the directory holds %q", err, got)
		}
		if b, _ := os.ReadFile(canary); string(b) != "canary" {
			t.Fatalf("the canary changed: %q", b)
		}
		if _, err := os.Lstat(absCanary); err == nil {
			os.Remove(absCanary)
			t.Fatalf("%s was created", absCanary)
		}
		if err != nil {
			return
		}
		// No restored symlink, under any of its names, leads out.
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Type()&os.ModeSymlink == 0 {
				return nil
			}
			target, _ := os.Readlink(p)
			rel, _ := filepath.Rel(root, p)
			if symlinkLeavesRoot(filepath.ToSlash(rel), target) {
				t.Fatalf("restored %s -> %s, which leaves the root", rel, target)
			}
			return nil
		})
	})
}

// FuzzParseManifest parses arbitrary manifests, and checks that what
// parses renders back to something that parses the same.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(manifestMagic + "\n. type=dir mode=0755 uid=0 gid=0 time=1.5\nbad\\377 type=file mode=4755 uid=1 gid=2 size=3 sha256=" + strings.Repeat("ab", 32) + " time=-3.250000000 xattr.user.x=" + strings.Repeat("cd", 32) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(bytes.NewReader(data))
		if err != nil {
			return
		}
		out, _ := m.MarshalText()
		m2, err := ParseManifest(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", out, err)
		}
		out2, _ := m2.MarshalText()
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%q\n%q", out, out2)
		}
	})
}
