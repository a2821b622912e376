package snapshot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/golden"

	"golang.org/x/sys/unix"
)

// TestGolden pins the bytes of a small uncompressed snapshot and its
// manifest: a change to the format shows up here first.
func TestGolden(t *testing.T) {
	requireRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.MkdirAll(filepath.Join(src, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("node1\n"), 0o644))
	must(t, os.Symlink("/usr/share/zoneinfo/UTC", filepath.Join(src, "etc/localtime")))
	must(t, os.WriteFile(filepath.Join(src, "setuid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chown(filepath.Join(src, "setuid"), 0, 7))
	must(t, unix.Chmod(filepath.Join(src, "setuid"), 0o4755))
	must(t, os.Link(filepath.Join(src, "setuid"), filepath.Join(src, "zz-link")))
	epoch := time.Unix(1700000000, 0).UTC()
	for _, p := range []string{"etc/hostname", "etc/localtime", "setuid", "etc", "."} {
		must(t, lutimes(filepath.Join(src, p), epoch.Add(-time.Hour)))
	}
	var b bytes.Buffer
	if _, err := Write(t.Context(), src, &b, Options{Compression: None, SourceDateEpoch: &epoch}); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifestFrom(t.Context(), bytes.NewReader(b.Bytes()))
	must(t, err)
	text, err := m.MarshalText()
	must(t, err)
	for name, got := range map[string][]byte{"small.tar": b.Bytes(), "small.manifest": text} {
		golden.Check(t, filepath.Join("testdata", "golden", name), got)
	}
}
