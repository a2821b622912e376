package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/krgimage/krgimage/pipeline"
)

// TestReproducible builds the bookworm recipe a second time from scratch,
// without the stage cache, with the first build's SOURCE_DATE_EPOCH (the
// date of the suite's Release file), and checks both made the same bytes:
// the snapshot, the initramfs, every output. When they differ, it prints
// krgimage diff of the two snapshots.
func TestReproducible(t *testing.T) {
	first, _ := bookwormImage(t, "ro")
	a := readReport(t, first)
	epoch := strconv.FormatInt(a.BuildTime.Unix(), 10)
	second, b := rebuildFromScratch(t, epoch)
	if d := pipeline.CompareReports(a, b); len(d.Upgraded)+len(d.Downgraded)+len(d.Added)+len(d.Removed) > 0 {
		// Not krgimage's doing: the mirror changed between the two
		// builds. Two builds of its new state must agree.
		var buf bytes.Buffer
		d.WriteText(&buf)
		t.Logf("the mirror changed between the two builds; building once more:\n%s", buf.String())
		first, a = second, b
		second, b = rebuildFromScratch(t, epoch)
		if d := pipeline.CompareReports(a, b); len(d.Upgraded)+len(d.Downgraded)+len(d.Added)+len(d.Removed) > 0 {
			t.Fatal("the mirror changed again during the test")
		}
	}
	if a.Snapshot == nil || b.Snapshot == nil {
		t.Fatal("a build wrote no snapshot")
	}
	if a.Snapshot.SHA256 != b.Snapshot.SHA256 {
		t.Errorf("snapshot sha256 %s, then %s", a.Snapshot.SHA256, b.Snapshot.SHA256)
		for _, args := range [][]string{{"diff"}, {"diff", "--mtime"}} {
			o, _ := exec.Command(krgimage, append(args, filepath.Join(first, a.Snapshot.Path), filepath.Join(second, b.Snapshot.Path))...).CombinedOutput()
			t.Logf("krgimage %v:\n%s", args, o)
		}
	}
	initrds, _ := filepath.Glob(filepath.Join(first, "rootfs/boot/initrd.img-*"))
	if len(initrds) != 1 {
		t.Fatalf("initramfs images: %v", initrds)
	}
	one, err1 := os.ReadFile(initrds[0])
	two, err2 := os.ReadFile(filepath.Join(second, "rootfs/boot", filepath.Base(initrds[0])))
	if err1 != nil || err2 != nil || !bytes.Equal(one, two) {
		t.Errorf("the initramfs differs (%v, %v)", err1, err2)
	}
	if d := pipeline.CompareReports(a, b); !d.Empty() {
		var buf bytes.Buffer
		d.WriteText(&buf)
		t.Errorf("the outputs differ:\n%s", buf.String())
	}
	t.Logf("both builds: snapshot sha256 %s, %d outputs alike", b.Snapshot.SHA256, len(b.Outputs))
}

// rebuildFromScratch builds the shared read-only image's recipe again
// without the stage cache, dated epoch.
func rebuildFromScratch(t *testing.T, epoch string) (string, *pipeline.Report) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "build")
	cmd := exec.CommandContext(t.Context(), krgimage, append([]string{"build", "../recipes/bookworm-nfsroot.yaml", "-o", out, "--no-cache"},
		imageVars("ro")...)...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+epoch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("krgimage build: %v\n%s", err, tail(stderr.String(), 40))
	}
	return out, readReport(t, out)
}
