package initramfs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/internal/testfixture"
	"github.com/krgimage/krgimage/recipes"
)

// BenchmarkNetbootInitramfs writes krgimage's netboot initramfs and, in
// the same image and the same run, initramfs-tools' (mkinitramfs with
// BOOT=nfs MODULES=netboot, the seed's "ramdisk with network support"),
// and reports both times and sizes and their ratios.
func BenchmarkNetbootInitramfs(b *testing.B) {
	testenv.RequireRoot(b, "chroot and mounts to run mkinitramfs")
	root, version := testfixture.KernelRoot(b)
	log := logging.Discard()
	img := &chroot.Image{Root: root, Recipe: &recipes.Recipe{Name: "bench", Suite: "bookworm"}, Log: log, Runner: run.New(log)}
	s, err := chroot.Open(b.Context(), img)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.SetShellVars("/etc/initramfs-tools/initramfs.conf", map[string]string{"BOOT": "nfs", "MODULES": "netboot", "COMPRESS": "gzip"}); err != nil {
		b.Fatal(err)
	}
	o := Options{Root: root, Kernel: version, NICs: recipes.DefaultNICs, DefaultNICs: true, BuildTime: time.Unix(1700000000, 0)}
	ours := filepath.Join(b.TempDir(), "initrd.img")
	var native, mk time.Duration
	var nativeSize, mkSize int64
	n := 0
	for b.Loop() {
		start := time.Now()
		res, err := WriteFile(b.Context(), o, ours)
		if err != nil {
			b.Fatal(err)
		}
		native += time.Since(start)
		nativeSize = res.Size

		start = time.Now()
		if err := s.Run(b.Context(), "mkinitramfs", "-o", "/tmp/mkinitramfs.img", version); err != nil {
			b.Fatal(err)
		}
		mk += time.Since(start)
		fi, err := os.Stat(filepath.Join(root, "tmp/mkinitramfs.img"))
		if err != nil {
			b.Fatal(err)
		}
		mkSize = fi.Size()
		n++
	}
	b.ReportMetric(float64(native.Milliseconds())/float64(n), "krgimage-ms")
	b.ReportMetric(float64(mk.Milliseconds())/float64(n), "mkinitramfs-ms")
	b.ReportMetric(float64(mk)/float64(native), "speedup-x")
	b.ReportMetric(float64(nativeSize)/(1<<20), "krgimage-MiB")
	b.ReportMetric(float64(mkSize)/(1<<20), "mkinitramfs-MiB")
	b.ReportMetric(float64(mkSize)/float64(nativeSize), "size-ratio-x")
}
