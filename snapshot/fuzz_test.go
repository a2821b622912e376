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
	// Names and targets in PAX records, which no checksum covers, so that
	// mutations reach them: symlinks anywhere, entries below and over them.
	pax := func(typ byte, name, link, data string) hostileEntry {
		recs := map[string]string{paxPath: name}
		if link != "" {
			recs[paxLinkpath] = link
		}
		return hostileEntry{name: "x", typ: typ, data: data, pax: recs}
	}
	f.Add(hostileTar(f, pax(typeDir, "./", "", ""), pax(typeDir, "d/", "", ""),
		pax(typeSymlink, "s", "/", ""), pax(typeReg, "d/f", "", "data"),
		pax(typeSymlink, "d/up", "../../../../..", ""), pax(typeReg, "d/g", "", "more"),
		pax(typeSymlink, "d/out", "../canary", ""), pax(typeLink, "d/h", "d/f", ""),
		pax(typeReg, "d/out", "", "over"), pax(typeSymlink, "in", "d", ""), pax(typeFifo, "d/p", "", "")))
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

// FuzzRestore restores arbitrary bytes, half of them resolving paths as
// on kernels without openat2. Whatever happens, nothing outside the target
// changes (the canaries next to it keep their content and mtime, absCanary
// never appears), and a failed restore leaves nothing at all. After a
// restore, the tree is exactly the archive's entries, each at its own
// path under real directories: resolved in the root, every restored path
// stays there, whatever its symlinks, which are kept verbatim, point at.
func FuzzRestore(f *testing.F) {
	seedArchives(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		before := plantCanaries(t, base)
		root := filepath.Join(base, "root")
		o := RestoreOptions{NoSync: true, Threads: 1, noOpenat2: len(data)%2 == 1}
		_, err := RestoreReader(t.Context(), bytes.NewReader(data), root, o)
		checkCanaries(t, base, before, err == nil)
		if err == nil {
			checkRestoredTree(t, data, root)
		}
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
