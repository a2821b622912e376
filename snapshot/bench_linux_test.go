package snapshot

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krgimage/krgimage/internal/testfixture"
)

// The benchmarks compare krgimage with GNU tar piped through zstd -T0 on
// the cached bootstrapped Debian root, in the same run, alternating which
// goes first, with the page cache warm and dirty data flushed before each
// timed operation. Ratios above 1 mean krgimage is slower or bigger. They
// are medians of the per-run ratios; cpu-ratio compares CPU time (user and
// system), which other jobs on the machine disturb less than wall time.
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

// timing is one timed operation: wall time and the CPU time it used,
// user plus system, its children included.
type timing struct{ wall, cpu time.Duration }

func timeCmd(b *testing.B, args ...string) timing {
	b.Helper()
	start := time.Now()
	cmd := exec.Command(args[0], args[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%q: %v\n%s", args, err, out)
	}
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return timing{wall, time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
}

// timeFunc times f, which runs in this process: its CPU time is the
// process's, so nothing else may run meanwhile.
func timeFunc(b *testing.B, f func()) timing {
	b.Helper()
	var ru0, ru1 unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru0); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	f()
	wall := time.Since(start)
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru1); err != nil {
		b.Fatal(err)
	}
	cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
	return timing{wall, time.Duration(cpu)}
}

func fileSize(b *testing.B, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

func median(x []float64) float64 {
	x = slices.Sorted(slices.Values(x))
	if len(x)%2 == 1 {
		return x[len(x)/2]
	}
	return (x[len(x)/2-1] + x[len(x)/2]) / 2
}

// report prints the medians of the runs, and of the per-run ratios: each
// run times both tools back to back, so its ratio is the fairest figure
// on a machine shared with other jobs.
func report(b *testing.B, ours, tar []timing, oursSize, tarSize int64) {
	var ow, tw, oc, tc, rw, rc []float64
	for i := range ours {
		ow, tw = append(ow, ours[i].wall.Seconds()), append(tw, tar[i].wall.Seconds())
		oc, tc = append(oc, ours[i].cpu.Seconds()), append(tc, tar[i].cpu.Seconds())
		rw, rc = append(rw, ow[i]/tw[i]), append(rc, oc[i]/tc[i])
	}
	b.ReportMetric(median(ow), "krgimage-s")
	b.ReportMetric(median(tw), "tar-s")
	b.ReportMetric(median(rw), "time-ratio")
	b.ReportMetric(median(rc), "cpu-ratio")
	if tarSize > 0 {
		b.ReportMetric(float64(oursSize)/float64(tarSize), "size-ratio")
		b.ReportMetric(float64(oursSize)/(1<<20), "krgimage-MiB")
		b.ReportMetric(float64(tarSize)/(1<<20), "tar-MiB")
	}
	b.Logf("median of %d runs: krgimage %.3fs (cpu %.3fs) vs tar %.3fs (cpu %.3fs); time ratio %.2f (runs %.2f), cpu ratio %.2f, size ratio %.3f",
		len(ours), median(ow), median(oc), median(tw), median(tc), median(rw), rw, median(rc), float64(oursSize)/float64(max(tarSize, 1)))
}

func BenchmarkSnapshot(b *testing.B) {
	root := testfixture.CachedRoot(b, testfixture.Bookworm)
	dir := benchDir(b)
	var ours, tar []timing
	var oursSize, tarSize int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mine, theirs := filepath.Join(dir, "ours.tar.zst"), filepath.Join(dir, "tar.tar.zst")
		runOurs := func() {
			syncFS(b, dir)
			ours = append(ours, timeFunc(b, func() {
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
			}))
		}
		runTar := func() {
			syncFS(b, dir)
			tar = append(tar, timeCmd(b, append(gnuTarCreate, theirs, "-C", root, ".")...))
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
	root := testfixture.CachedRoot(b, testfixture.Bookworm)
	dir := benchDir(b)
	mine, theirs := filepath.Join(dir, "ours.tar.zst"), filepath.Join(dir, "tar.tar.zst")
	if _, err := WriteFile(b.Context(), root, mine, Options{}); err != nil {
		b.Fatal(err)
	}
	timeCmd(b, append(gnuTarCreate, theirs, "-C", root, ".")...)
	var ours, tar []timing
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, t := filepath.Join(dir, "a"), filepath.Join(dir, "t")
		runOurs := func() {
			syncFS(b, dir)
			ours = append(ours, timeFunc(b, func() {
				// No sync: GNU tar does not sync either.
				if _, err := Restore(b.Context(), mine, a, RestoreOptions{NoSync: true}); err != nil {
					b.Fatal(err)
				}
			}))
		}
		runTar := func() {
			if err := os.Mkdir(t, 0o755); err != nil {
				b.Fatal(err)
			}
			syncFS(b, dir)
			tar = append(tar, timeCmd(b, "tar", "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-I", "zstd -T0", "-xpf", theirs, "-C", t))
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
