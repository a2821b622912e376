package tests

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/testenv"
	"github.com/krgimage/krgimage/pipeline"
)

// BenchmarkRebuild measures the stage cache on the shipped bookworm recipe
// with a last provisioning step added (a write, the kind of entry a
// nightly job's recipe changes): a cold build, then rebuilds with no
// change and with a change to a late step, each as a ratio of the cold
// build's time. The targets: under 0.10 with no change, under
// 0.25 after a change to the last step. KRGIMAGE_BENCH_DIR puts the
// outputs and the cache on another filesystem.
func BenchmarkRebuild(b *testing.B) {
	testenv.RequireRoot(b, "builds: debootstrap, chroot and mounts")
	src, err := os.ReadFile("../recipes/bookworm-nfsroot.yaml")
	if err != nil {
		b.Fatal(err)
	}
	dir, err := os.MkdirTemp(os.Getenv("KRGIMAGE_BENCH_DIR"), "krgimage-bench-cache-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cache := filepath.Join(dir, "cache")
	recipe := filepath.Join(dir, "bench.yaml")
	// The write goes after ssh, whose line ends in a comment.
	const sshLine = "# each node makes its own host keys at boot\n"
	base := strings.Replace(string(src), sshLine, sshLine+"  - write: {path: /etc/node-image, content: \"1\\n\", mode: \"0444\"}\n", 1)
	if base == string(src) {
		b.Fatal("the recipe's ssh line changed: update the benchmark")
	}
	for range b.N {
		os.RemoveAll(cache)
		text := base
		steps := []struct {
			name, out string
			edit      func(string) string
			// changed is the step the change is in, which must run
			// again, and from the first step that may: the cheap steps
			// between the last stored root and the change run again too.
			// "" when no step may run.
			changed, from string
		}{
			{"cold", "out", nil, "bootstrap", "bootstrap"},
			{"no change", "out", nil, "", ""},
			{"no change, new output", "out2", nil, "", ""},
			{"last provisioning step", "out", func(s string) string { return strings.Replace(s, `content: "1\n"`, `content: "2\n"`, 1) }, "write", "write"},
			{"initramfs", "out", func(s string) string {
				return strings.Replace(s, "  generator: native", "  compression: zstd\n  generator: native", 1)
			}, "initramfs", "write"},
			{"netboot append line", "out", func(s string) string {
				return strings.Replace(s, "append: [console=ttyS0]", "append: [console=ttyS0, quiet]", 1)
			}, "", ""},
		}
		var cold time.Duration
		var lines []string
		for _, st := range steps {
			if st.edit != nil {
				next := st.edit(text)
				if next == text {
					b.Fatalf("%s: the edit changed nothing", st.name)
				}
				text = next
			}
			if err := os.WriteFile(recipe, []byte(text), 0o644); err != nil {
				b.Fatal(err)
			}
			rep, took := cachedBuild(b, recipe, filepath.Join(dir, st.out), cache)
			if st.name == "cold" {
				cold = took
			}
			ran, first := []string{}, -1
			for i, s := range rep.Steps {
				if s.Cache == "miss" && s.Name != "snapshot" && first < 0 {
					first = i
				}
				if s.Cache == "miss" {
					ran = append(ran, fmt.Sprintf("%s %.1fs", s.Name, s.DurationSeconds))
				}
				if s.Stored {
					ran = append(ran, fmt.Sprintf("(stored %.1fs)", s.StoreSeconds))
				}
			}
			if first >= 0 && (st.from == "" || first < stepIndex(rep, st.from)) {
				b.Errorf("%s: %s ran again (%s)", st.name, rep.Steps[first].Name, pattern(rep))
			}
			if st.changed != "" && rep.Steps[stepIndex(rep, st.changed)].Cache != "miss" {
				b.Errorf("%s: %s did not run again (%s)", st.name, st.changed, pattern(rep))
			}
			ratio := took.Seconds() / cold.Seconds()
			lines = append(lines, fmt.Sprintf("%-24s %6.2fs  %.3f of cold  restored %s in %.1fs; ran %s", st.name, took.Seconds(), ratio,
				cmp.Or(rep.Cache.Restored, "nothing"), rep.Cache.RestoreSeconds, strings.Join(ran, ", ")))
			if st.name != "cold" {
				b.ReportMetric(ratio, strings.NewReplacer(" ", "-", ",", "").Replace(st.name)+"-ratio")
			}
		}
		b.ReportMetric(cold.Seconds(), "cold-s")
		b.Log("\n" + strings.Join(lines, "\n"))
	}
}

func stepIndex(rep *pipeline.Report, name string) int {
	for i, s := range rep.Steps {
		if s.Name == name {
			return i
		}
	}
	return -1
}
