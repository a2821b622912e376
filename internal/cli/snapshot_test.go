package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krgimage/krgimage/internal/testenv"
)

func requireRoot(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "restoring owners")
}

// smallRoot builds a tiny root with a dpkg status file.
func smallRoot(t *testing.T, dir, bashVersion string) string {
	t.Helper()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"etc", "var/lib/dpkg", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/hostname":        "node1\n",
		"usr/bin/ping":        "elf",
		"var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\nVersion: " + bashVersion + "\n\nPackage: iputils-ping\nStatus: install ok installed\nVersion: 3:20221126-1\n",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Chmod(filepath.Join(root, "usr/bin/ping"), 0o4755); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestSnapshotRestoreVerifyDiff(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	root := smallRoot(t, dir, "5.2.15-2+b2")
	archive := filepath.Join(dir, "node.tar.zst")

	code, stdout, stderr := execute(t, "snapshot", root, "-o", archive, "--source-date-epoch", "1700000000")
	if code != ExitOK {
		t.Fatalf("snapshot: exit %d: %s", code, stderr)
	}
	sidecar, err := os.ReadFile(archive + ".sha256")
	if err != nil || !strings.HasPrefix(stdout, strings.Fields(string(sidecar))[0]) {
		t.Errorf("stdout %q, sidecar %q (%v)", stdout, sidecar, err)
	}
	// Reproducible: the same bytes again.
	again := filepath.Join(dir, "again.tar.zst")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if code, stdout2, stderr := execute(t, "snapshot", root, "-o", again); code != ExitOK || strings.Fields(stdout2)[0] != strings.Fields(stdout)[0] {
		t.Errorf("second snapshot: exit %d, %q vs %q: %s", code, stdout2, stdout, stderr)
	}

	if code, stdout, stderr := execute(t, "verify", archive); code != ExitOK || !strings.Contains(stdout, "ok, 10 entries match") {
		t.Errorf("verify: exit %d: %s%s", code, stdout, stderr)
	}
	dst := filepath.Join(dir, "restored")
	if code, _, stderr := execute(t, "restore", archive, dst); code != ExitOK {
		t.Fatalf("restore: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := execute(t, "verify", archive, "--against", dst); code != ExitOK {
		t.Errorf("verify --against: exit %d: %s%s", code, stdout, stderr)
	}
	if code, _, stderr := execute(t, "restore", archive, dst); code != ExitFailure || !strings.Contains(stderr, "not empty") {
		t.Errorf("restore over a full tree: exit %d: %s", code, stderr)
	}
	if code, _, stderr := execute(t, "restore", archive, dst, "--force"); code != ExitOK {
		t.Errorf("restore --force: exit %d: %s", code, stderr)
	}

	// A changed tree: verify lists the differences, diff too, with the
	// package versions.
	os.WriteFile(filepath.Join(dst, "etc/hostname"), []byte("node2\n"), 0o644)
	os.Chmod(filepath.Join(dst, "usr/bin/ping"), 0o755)
	os.WriteFile(filepath.Join(dst, "var/lib/dpkg/status"), []byte("Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\n"), 0o644)
	code, stdout, _ = execute(t, "verify", archive, "--against", dst, "--ignore-mtime")
	if code != ExitFailure || !strings.Contains(stdout, "changed  etc/hostname: content") || !strings.Contains(stdout, "changed  usr/bin/ping: mode 4755 -> 0755") {
		t.Errorf("verify --against a changed tree: exit %d:\n%s", code, stdout)
	}
	code, stdout, stderr = execute(t, "diff", archive, dst, "--exit-code")
	for _, want := range []string{"changed  etc/hostname: content", "bash: 5.2.15-2+b2 -> 5.2.15-2+b7", "iputils-ping: 3:20221126-1 -> (none)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("diff lacks %q (exit %d):\n%s%s", want, code, stdout, stderr)
		}
	}
	if code != ExitFailure {
		t.Errorf("diff --exit-code: exit %d", code)
	}
	if code, stdout, _ := execute(t, "diff", archive, again); code != ExitOK || stdout != "" {
		t.Errorf("diff of identical archives: exit %d:\n%s", code, stdout)
	}

	// A damaged archive fails verification.
	b, _ := os.ReadFile(archive)
	b[len(b)/2] ^= 1
	os.WriteFile(archive, b, 0o644)
	if code, _, stderr := execute(t, "verify", archive); code != ExitFailure || !strings.Contains(stderr, "krgimage: verifying") {
		t.Errorf("verify of a damaged archive: exit %d: %s", code, stderr)
	}
}

func TestSnapshotUsage(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	tests := [][]string{
		{"snapshot"},
		{"snapshot", dir},
		{"snapshot", dir, "-o", filepath.Join(dir, "inside.tar.zst")},
		{"snapshot", dir, "-o", filepath.Join(link, "inside.tar.zst")},
		{"snapshot", dir, "-o", "/tmp/x.tar", "--compression", "lz4"},
		{"snapshot", dir, "-o", "/tmp/x.tar.zst", "--level", "30"},
		{"snapshot", dir, "-o", "/tmp/x.tar.bz2"},
		{"snapshot", dir, "-o", "/tmp/x.tar.gz", "--compression", "zstd"},
		{"snapshot", dir, "-o", "/tmp/x.tar.zst", "--source-date-epoch", "yesterday"},
		{"restore", "a.tar.zst"},
		{"verify"},
		{"diff", "a"},
	}
	for _, args := range tests {
		code, _, stderr := execute(t, args...)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want %d: %s", args, code, ExitUsage, stderr)
		}
	}
	if _, _, stderr := execute(t, "snapshot", dir, "-o", "/tmp/x.tar.xz", "--level", "10"); !strings.Contains(stderr, "--level: xz level 10 out of range 0..9") {
		t.Errorf("a bad level is not blamed on --level: %s", stderr)
	}
	if code, stdout, _ := execute(t, "restore", "--help"); code != ExitOK || !strings.Contains(stdout, "staging directory") {
		t.Errorf("restore --help: exit %d:\n%s", code, stdout)
	}
}
