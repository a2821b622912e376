package boottest

import (
	"strings"
	"testing"
	"time"
)

func TestTrackerNamesTheFailingPhase(t *testing.T) {
	for _, tc := range []struct {
		name    string
		console []string
		phase   string
		worst   int
		explain string
	}{
		{"no pxe", []string{"iPXE 1.21 -- Open Source Network Boot Firmware", "No more network devices"}, PhaseLoader, noProblem,
			"the boot loader ran but the kernel did not start"},
		{"nothing", nil, PhaseStart, noProblem, "nothing booted"},
		{"kernel not served", []string{"PXELINUX 6.04 lwIP 20200816", "Loading http://192.168.1.1:80/boot/vmlinuz-6.1.0... failed: No such file or directory"},
			PhaseLoader, fatalProblem, "the boot loader ran but the kernel did not start (kernel or initramfs missing from TFTP or HTTP?): Loading http://"},
		{"a later failed load is the kernel's business", []string{"PXELINUX 6.04", "Linux version 6.1.0", "Loading x... failed: y"}, PhaseKernel, noProblem,
			"the kernel started but the initramfs did not run"},
		{"garbage initrd", []string{"PXELINUX 6.04", "[    0.0] Linux version 6.1.0", "[    1.2] Initramfs unpacking failed: junk within compressed archive",
			"[    2.0] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"}, PhaseKernel, fatalProblem,
			"the kernel started but the initramfs did not run: [    1.2] Initramfs unpacking failed: junk within compressed archive"},
		{"wrong export", []string{"PXELINUX 6.04", "Linux version 6.1.0", "krgimage-initramfs: starting", "krgimage-initramfs: network up on eth0: 192.168.1.101",
			"krgimage-initramfs: ERROR: mounting NFS root 192.168.1.1:/srv/nope refused: mount: No such file or directory"}, PhaseNetwork, problem,
			"the network came up but NFS mount failed: krgimage-initramfs: ERROR: mounting NFS root 192.168.1.1:/srv/nope refused"},
		{"initramfs-tools", []string{"Linux version 6.1.0", "Loading, please wait...", "IP-Config: Complete:", "VFS: Mounted root (nfs filesystem) readonly"}, PhaseNFS, noProblem,
			"the NFS root was mounted but init did not start"},
		{"systemd", []string{"Linux version", "krgimage-initramfs: starting", "krgimage-initramfs: network up", "krgimage-initramfs: NFS root mounted",
			"krgimage-initramfs: switching to /sbin/init", "Welcome to Debian GNU/Linux 12 (bookworm)!"}, PhaseInit, noProblem,
			"init started but the login prompt never came (timeout)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Unix(0, 0)
			tr := newTracker(start)
			worst := noProblem
			for i, l := range tc.console {
				worst = max(worst, tr.line(l, start.Add(time.Duration(i)*time.Second)))
			}
			if tr.Last() != tc.phase || worst != tc.worst {
				t.Errorf("phase %q problem %d, want %q %d", tr.Last(), worst, tc.phase, tc.worst)
			}
			if got := tr.explain("timeout"); !strings.HasPrefix(got, tc.explain) {
				t.Errorf("explain = %q\nwant it to start with %q", got, tc.explain)
			}
			tl := tr.Timeline()
			if tl[0].Phase != PhaseStart || tl[len(tl)-1].Phase != tc.phase {
				t.Errorf("timeline %v", tl)
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		res  Result
		want string
	}{
		{Result{Passed: true, Nodes: []NodeResult{{Name: "node1", Passed: true, Phase: PhaseLogin, Seconds: 54.4}}},
			"PASS node1: login reached in 54s"},
		{Result{Passed: true, RootUnchanged: &yes, Nodes: []NodeResult{
			{Name: "node1", Passed: true, Phase: PhaseChecks, Hostname: "node1", Checks: make([]CheckResult, 5), Seconds: 107},
			{Name: "node2", Passed: true, Phase: PhaseChecks, Hostname: "node2", Checks: make([]CheckResult, 5), Seconds: 108}}},
			"PASS node1: booted as node1 and passed 5 checks in 107s; node2: booted as node2 and passed 5 checks in 108s"},
		{Result{RootUnchanged: &no, Nodes: []NodeResult{{Name: "node1", Phase: PhaseNetwork, Seconds: 90, Error: "the network came up but NFS mount failed"}}},
			"FAIL node1: FAILED at network after 90s: the network came up but NFS mount failed; the read-only root was modified"},
	} {
		if got := verdict(&tc.res); got != tc.want {
			t.Errorf("verdict = %q\nwant      %q", got, tc.want)
		}
	}
}
