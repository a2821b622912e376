package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testLog collects warnings so tests can check them.
func testLog(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestRoundTrip snapshots the torture tree and restores it with every
// compression: the restored tree must not differ in any way the test's own
// walker can see.
func TestRoundTrip(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	buildTorture(t, src)
	want := treeState(t, src)
	if _, ok := want["socket"]; ok {
		t.Fatal("the test walker should leave sockets out")
	}
	for _, c := range []Compression{Zstd, Gzip, XZ, None} {
		t.Run(string(c), func(t *testing.T) {
			archive := filepath.Join(dir, "image.tar."+string(c))
			var logs bytes.Buffer
			res, err := WriteFile(t.Context(), src, archive, Options{Compression: c, Log: testLog(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), "skipping socket") {
				t.Errorf("no warning for the socket:\n%s", logs.String())
			}
			if res.Entries != len(want) {
				t.Errorf("%d entries archived, the tree has %d", res.Entries, len(want))
			}
			if rep, err := Verify(t.Context(), archive, VerifyOptions{}); err != nil {
				t.Fatalf("Verify() = %v %v", err, rep)
			}
			if rep, err := Verify(t.Context(), archive, VerifyOptions{Against: src}); err != nil {
				t.Fatalf("Verify(against the source) = %v %v", err, rep.Differences)
			}
			dst := filepath.Join(dir, "restored-"+string(c))
			rr, err := Restore(t.Context(), archive, dst, RestoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !rr.Manifest || !rr.Sidecar || rr.Entries != len(want) {
				t.Errorf("Restore() = %+v", rr)
			}
			for _, d := range diffStates(want, treeState(t, dst), nil) {
				t.Error(d)
			}
			checkSparseFile(t, filepath.Join(dst, "sparse"))
			if rep, err := Verify(t.Context(), archive, VerifyOptions{Against: dst}); err != nil {
				t.Errorf("Verify(against the restored tree) = %v %v", err, rep.Differences)
			}
			os.RemoveAll(dst)
		})
	}
}

// TestRestoreWithoutSidecar restores through RestoreReader, which hashes
// every file against the manifest instead of trusting a sidecar.
func TestRestoreWithoutSidecar(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	buildTorture(t, src)
	var buf bytes.Buffer
	if _, err := Write(t.Context(), src, &buf, Options{}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "dst")
	res, err := RestoreReader(t.Context(), bytes.NewReader(buf.Bytes()), dst, RestoreOptions{})
	if err != nil || !res.Manifest || res.Sidecar {
		t.Fatalf("RestoreReader() = %+v, %v", res, err)
	}
	for _, d := range diffStates(treeState(t, src), treeState(t, dst), nil) {
		t.Error(d)
	}
}

// tarTool extracts with a real tar, as a user following the seed would.
func tarTool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", args, err, out)
	}
	if len(out) > 0 {
		t.Logf("%s: %s", args[0], out)
	}
}

// TestInterop checks both directions: GNU tar and bsdtar restore our
// archives with full fidelity, and we restore GNU tar's.
func TestInterop(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	buildTorture(t, src)
	want := treeState(t, src)
	archive := filepath.Join(dir, "ours.tar.zst")
	if _, err := WriteFile(t.Context(), src, archive, Options{}); err != nil {
		t.Fatal(err)
	}
	// bsdtar does not restore the mtime of the directory it extracts
	// into ("./"): libarchive sets it before creating the children.
	rootMtime := func(p string, w, g fileState) bool {
		g.mtime = w.mtime
		return p == "." && w.String() == g.String()
	}
	tests := []struct {
		name    string
		extract func(t *testing.T, dst string)
		ignore  func(p string, w, g fileState) bool
	}{
		{"gnu-tar-extracts-ours", func(t *testing.T, dst string) {
			must(t, os.Mkdir(dst, 0o700))
			tarTool(t, "tar", "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-xpf", archive, "-C", dst)
		}, nil},
		{"bsdtar-extracts-ours", func(t *testing.T, dst string) {
			must(t, os.Mkdir(dst, 0o700))
			tarTool(t, "bsdtar", "--numeric-owner", "-xpf", archive, "-C", dst)
		}, rootMtime},
		{"we-restore-gnu-tar", func(t *testing.T, dst string) {
			gnu := filepath.Join(dir, "gnu.tar")
			tarTool(t, "tar", "--xattrs", "--xattrs-include=*", "--acls", "--sparse", "--numeric-owner", "-cpf", gnu, "-C", src, ".")
			if _, err := Restore(t.Context(), gnu, dst, RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			// The two archives hold the same tree.
			rep, err := Diff(t.Context(), gnu, archive, DiffOptions{Mtime: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range rep.Differences {
				t.Errorf("GNU tar's archive and ours differ: %s", d)
			}
		}, nil},
		{"we-restore-gnu-tar-acls-only", func(t *testing.T, dst string) {
			// Without --xattrs-include, GNU tar keeps ACLs as text only,
			// naming users where it can.
			gnu := filepath.Join(dir, "gnu-acls.tar.gz")
			tarTool(t, "tar", "--xattrs", "--acls", "--sparse", "-czpf", gnu, "-C", src, ".")
			if _, err := Restore(t.Context(), gnu, dst, RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(dir, tt.name)
			tt.extract(t, dst)
			for _, d := range diffStates(want, treeState(t, dst), tt.ignore) {
				t.Error(d)
			}
			checkSparseFile(t, filepath.Join(dst, "sparse"))
			// verify --against ignores the manifest that tar tools extract.
			rep, err := Verify(t.Context(), archive, VerifyOptions{Against: dst})
			if err != nil && !(tt.ignore != nil && len(rep.Differences) == 1 && rep.Differences[0].Path == ".") {
				t.Errorf("Verify(against %s) = %v %v", tt.name, err, rep.Differences)
			}
			os.RemoveAll(dst)
		})
	}
}

// TestRestoreTarget covers where Restore may write: a new directory, an
// empty one, a non-empty one only with Force, and never a file.
func TestRestoreTarget(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	archive := smallArchive(t, dir)
	full := filepath.Join(dir, "full")
	must(t, os.MkdirAll(full, 0o755))
	must(t, os.WriteFile(filepath.Join(full, "old"), []byte("old"), 0o644))
	file := filepath.Join(dir, "file")
	must(t, os.WriteFile(file, nil, 0o644))
	empty := filepath.Join(dir, "empty")
	must(t, os.Mkdir(empty, 0o700))
	tests := []struct {
		name    string
		root    string
		force   bool
		wantErr error
	}{
		{"new", filepath.Join(dir, "new"), false, nil},
		{"empty", empty, false, nil},
		{"non-empty", full, false, ErrNotEmpty},
		{"non-empty-forced", full, true, nil},
		{"file", file, true, errors.New("not a directory")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Restore(t.Context(), archive, tt.root, RestoreOptions{Force: tt.force})
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatal(err)
			case tt.wantErr != nil && (err == nil || !errors.Is(err, tt.wantErr) && !strings.Contains(err.Error(), tt.wantErr.Error())):
				t.Fatalf("Restore() = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil:
				if b, err := os.ReadFile(filepath.Join(tt.root, "etc/hostname")); err != nil || string(b) != "node1\n" {
					t.Errorf("etc/hostname = %q, %v", b, err)
				}
				if _, err := os.Stat(filepath.Join(tt.root, "old")); !isNotExist(err) {
					t.Errorf("the previous tree survived: %v", err)
				}
			}
			noStaging(t, dir)
		})
	}
}

// TestWriteFileFailure checks that a failed snapshot leaves nothing
// behind, not even a temporary file.
func TestWriteFileFailure(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	must(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "d/f"), []byte("x"), 0o644))
	out := filepath.Join(dir, "out")
	must(t, os.Mkdir(out, 0o755))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := WriteFile(ctx, src, filepath.Join(out, "a.tar.zst"), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteFile() = %v, want context.Canceled", err)
	}
	if _, err := WriteFile(t.Context(), filepath.Join(dir, "missing"), filepath.Join(out, "b.tar.zst"), Options{}); err == nil {
		t.Error("WriteFile() of a missing tree succeeded")
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestWriteFileCanceledMidFile: Ctrl-C in the middle of a big file stops
// the snapshot at once, with every compression, and leaves nothing.
func TestWriteFileCanceledMidFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	must(t, os.Mkdir(src, 0o755))
	// 48 MiB that compress badly: xz needs several seconds for them.
	data := make([]byte, 48<<20)
	var x uint64 = 1
	for i := 0; i+8 <= len(data); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(data[i:], x)
	}
	must(t, os.WriteFile(filepath.Join(src, "big"), data, 0o644))
	out := filepath.Join(dir, "out")
	must(t, os.Mkdir(out, 0o755))
	// gzip and none may finish within the 50 ms on a fast machine.
	for _, c := range []Compression{XZ, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			timer := time.AfterFunc(50*time.Millisecond, cancel)
			defer timer.Stop()
			start := time.Now()
			_, err := WriteFile(ctx, src, filepath.Join(out, "a.tar"), Options{Compression: c, Threads: 1})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WriteFile() = %v after %v, want context.Canceled", err, time.Since(start))
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("stopped %v after the cancel", took-50*time.Millisecond)
			}
			if left, _ := os.ReadDir(out); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestRestoreUnderDefaultACL: the staging directory must not pass its
// parent's default ACL on to the restored tree, and an archive without a
// root entry (tar -C src -cf x.tar etc) restores into a 0755 root.
func TestRestoreUnderDefaultACL(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	buildTorture(t, src)
	parent := filepath.Join(dir, "shared")
	must(t, os.Mkdir(parent, 0o755))
	tarTool(t, "setfacl", "-d", "-m", "u:1000:rwx,g:50:rwx", parent)
	archive := filepath.Join(dir, "a.tar.zst")
	if _, err := WriteFile(t.Context(), src, archive, Options{}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(parent, "node")
	if _, err := Restore(t.Context(), archive, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range diffStates(treeState(t, src), treeState(t, dst), nil) {
		t.Error(d)
	}

	plain := filepath.Join(dir, "plain.tar")
	tarTool(t, "tar", "-C", src, "-cf", plain, "acl-file")
	bare := filepath.Join(parent, "bare")
	if _, err := Restore(t.Context(), plain, bare, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(bare); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("root of an archive without one: %v, %v", fi.Mode(), err)
	}
	if out, err := exec.Command("getfacl", "-cp", bare).Output(); err != nil || strings.Contains(string(out), "default:") || strings.Contains(string(out), "user:1000") {
		t.Errorf("root of an archive without one has an inherited ACL: %v\n%s", err, out)
	}
}

// TestRestoreMountPoint: a mount point cannot be swapped with the staging
// directory, nor a tree with a mount inside removed: both are refused
// before anything is extracted, and the mounts stay as they were.
func TestRestoreMountPoint(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	archive := smallArchive(t, dir)
	mnt := filepath.Join(dir, "mnt")
	inside := filepath.Join(dir, "full", "proc")
	for _, p := range []string{mnt, inside} {
		must(t, os.MkdirAll(p, 0o755))
		tarTool(t, "mount", "-t", "tmpfs", "none", p)
		t.Cleanup(func() { exec.Command("umount", p).Run() })
	}
	must(t, os.WriteFile(filepath.Join(inside, "keep"), []byte("x"), 0o644))
	for _, tc := range []struct{ root, want string }{
		{mnt, "is a mount point"},
		{filepath.Join(dir, "full"), "mounted inside it (" + inside + ")"},
	} {
		if _, err := Restore(t.Context(), archive, tc.root, RestoreOptions{Force: true}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Restore(%s) = %v, want %q", tc.root, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(inside, "keep")); err != nil {
		t.Errorf("the mount inside the target was touched: %v", err)
	}
	noStaging(t, dir)
}

// smallArchive writes dir/a.tar.zst, a snapshot of a tree holding
// etc/hostname.
func smallArchive(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "src")
	must(t, os.MkdirAll(filepath.Join(src, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("node1\n"), 0o644))
	archive := filepath.Join(dir, "a.tar.zst")
	if _, err := WriteFile(t.Context(), src, archive, Options{}); err != nil {
		t.Fatal(err)
	}
	return archive
}

// noStaging fails the test if a restore left a staging directory in dir.
func noStaging(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".restore-") {
			t.Errorf("staging directory left behind: %s", e.Name())
		}
	}
}

// TestRestoreACLText restores an archive GNU tar made with --acls alone,
// whose ACLs are text records only (SCHILY.acl.*, no xattr records): the
// ACLs must come back as getfacl shows them on the source.
func TestRestoreACLText(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	buildTorture(t, src)
	gnu := filepath.Join(dir, "acls.tar")
	tarTool(t, "tar", "--acls", "--numeric-owner", "-cpf", gnu, "-C", src, "acl-file", "acl-dir")
	raw, err := os.ReadFile(gnu)
	must(t, err)
	if !bytes.Contains(raw, []byte("SCHILY.acl.access")) || bytes.Contains(raw, []byte("SCHILY.xattr.system.posix_acl")) {
		t.Fatal("GNU tar did not write text-only ACL records")
	}
	dst := filepath.Join(dir, "dst")
	if _, err := Restore(t.Context(), gnu, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"acl-file", "acl-dir"} {
		getfacl := func(root string) string {
			out, err := exec.Command("getfacl", "-cn", filepath.Join(root, p)).Output()
			must(t, err)
			return string(out)
		}
		if w, g := getfacl(src), getfacl(dst); w != g || !strings.Contains(g, "user:1000:") {
			t.Errorf("%s: ACL\n%s\nwant\n%s", p, g, w)
		}
	}
}
