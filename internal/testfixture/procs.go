package testfixture

import (
	"os"
	"strconv"
	"strings"
)

// Contained maps the live processes descended from this test that run
// in a PID namespace other than ours (what the chroot helper started) to
// their namespace. From the host, a pivoted process's root reads as "/",
// so the image cannot be told by its path.
func Contained() map[int]string {
	self, _ := os.Readlink("/proc/self/ns/pid")
	procs := processes()
	out := map[int]string{}
	for pid, p := range procs {
		if p.ns == self || p.zombie {
			continue
		}
		for a := p.ppid; a > 1; a = procs[a].ppid {
			if a == os.Getpid() {
				out[pid] = p.ns
				break
			}
		}
	}
	return out
}

// AliveIn lists the live processes in any of the namespaces of seen,
// whoever their parent is now.
func AliveIn(seen map[int]string) []int {
	want := map[string]bool{}
	for _, ns := range seen {
		want[ns] = true
	}
	var pids []int
	for pid, p := range processes() {
		if want[p.ns] && !p.zombie {
			pids = append(pids, pid)
		}
	}
	return pids
}

type process struct {
	ppid   int
	ns     string
	zombie bool
}

func processes() map[int]process {
	procs := map[int]process{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		// pid (comm) state ppid ...: comm may hold spaces, the last ")" ends it.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ns, _ := os.Readlink("/proc/" + e.Name() + "/ns/pid")
		procs[pid] = process{ppid: ppid, ns: ns, zombie: f[0] == "Z"}
	}
	return procs
}

// Under lists the live processes whose root or working directory is in
// dir: what still works in a tree a test is about to remove.
func Under(dir string) []int {
	var pids []int
	for pid, p := range processes() {
		if p.zombie {
			continue
		}
		for _, link := range []string{"root", "cwd"} {
			target, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/" + link)
			if err == nil && (target == dir || strings.HasPrefix(target, dir+"/")) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
