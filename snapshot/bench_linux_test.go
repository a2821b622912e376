package snapshot

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krgimage/krgimage/internal/testenv"
)

// The benchmarks compare krgimage with GNU tar piped through zstd -T0 on
// the cached bootstrapped Debian root, in the same run, alternating which
// goes first, with the page cache warm and dirty data flushed before each
// timed operation. Ratios above 1 mean krgimage is slower or bigger.
//
//	make bench-snapshot
//	go test ./snapshot -run XXX -bench . -benchtime 5x

var gnuTarCreate = []string{"tar", "--xattrs", "--acls", "--numeric-owner", "-I", "zstd -T0", "-cf"}

func benchDir(b *testing.B) string {
	if d := os.Getenv("KRGIMAGE_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

func syncFS(b *testing.B, dir string) {
	b.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		b.Fatal(err)
	}
}

func timeCmd(b *testing.B, args ...string) time.Duration {
	b.Helper()
	start := time.Now()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		b.Fatalf("%q: %v\n%s", args, err, out)
	}
	return time.Since(start)
}

func fileSize(b *testing.B, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

func report(b *testing.B, ours, tar time.Duration, oursSize, tarSize int64) {
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "krgimage-s")
	b.ReportMetric(tar.Seconds()/n, "tar-s")
	b.ReportMetric(ours.Seconds()/tar.Seconds(), "time-ratio")
	if tarSize > 0 {
		b.ReportMetric(float64(oursSize)/float64(tarSize), "size-ratio")
		b.ReportMetric(float64(oursSize)/(1<<20), "krgimage-MiB")
		b.ReportMetric(float64(tarSize)/(1<<20), "tar-MiB")
	}
	b.Logf("krgimage %.3fs vs tar %.3fs (ratio %.2f), size ratio %.3f",
		ours.Seconds()/n, tar.Seconds()/n, ours.Seconds()/tar.Seconds(), float64(oursSize)/float64(max(tarSize, 1)))
}

func BenchmarkSnapshot(b *testing.B) {
	root := testenv.CachedRoot(b, testenv.Bookworm)
	dir := benchDir(b)
	var ours, tar time.Duration
	var oursSize, tarSize int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mine, theirs := filepath.Join(dir, "ours.tar.zst"), filepath.Join(dir, "tar.tar.zst")
		runOurs := func() {
			syncFS(b, dir)
			start := time.Now()
			f, err := os.Create(mine)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Write(b.Context(), root, f, Options{}); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
			ours += time.Since(start)
		}
		runTar := func() {
			syncFS(b, dir)
			tar += timeCmd(b, append(gnuTarCreate, theirs, "-C", root, ".")...)
		}
		if i%2 == 0 {
			runOurs()
			runTar()
		} else {
			runTar()
			runOurs()
		}
		oursSize, tarSize = fileSize(b, mine), fileSize(b, theirs)
		os.Remove(mine)
		os.Remove(theirs)
	}
	b.StopTimer()
	report(b, ours, tar, oursSize, tarSize)
}

func BenchmarkRestore(b *testing.B) {
	root := testenv.CachedRoot(b, testenv.Bookworm)
	dir := benchDir(b)
	mine, theirs := filepath.Join(dir, "ours.tar.zst"), filepath.Join(dir, "tar.tar.zst")
	if _, err := WriteFile(b.Context(), root, mine, Options{}); err != nil {
		b.Fatal(err)
	}
	timeCmd(b, append(gnuTarCreate, theirs, "-C", root, ".")...)
	var ours, tar time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, t := filepath.Join(dir, "a"), filepath.Join(dir, "t")
		runOurs := func() {
			syncFS(b, dir)
			start := time.Now()
			// No sync: GNU tar does not sync either.
			if _, err := Restore(b.Context(), mine, a, RestoreOptions{NoSync: true}); err != nil {
				b.Fatal(err)
			}
			ours += time.Since(start)
		}
		runTar := func() {
			if err := os.Mkdir(t, 0o755); err != nil {
				b.Fatal(err)
			}
			syncFS(b, dir)
			tar += timeCmd(b, "tar", "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-I", "zstd -T0", "-xpf", theirs, "-C", t)
		}
		if i%2 == 0 {
			runOurs()
			runTar()
		} else {
			runTar()
			runOurs()
		}
		b.StopTimer()
		os.RemoveAll(a)
		os.RemoveAll(t)
		b.StartTimer()
	}
	b.StopTimer()
	report(b, ours, tar, fileSize(b, mine), fileSize(b, theirs))
}
