package boottest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/krgimage/krgimage/internal/qemu"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/recipes"
)

// bootNode boots one node and follows it to the login prompt, then runs
// the recipe's checks.
func bootNode(ctx context.Context, o Options, bt *recipes.BootTest, login consoleLogin, n recipes.ResolvedNode, netdev, ns, work string) NodeResult {
	res := NodeResult{Name: n.Name, IP: n.IP.String(), MAC: n.MAC.String(), Console: filepath.Join(work, "console-"+n.Name+".log")}
	log := o.Log.With("node", n.Name)
	start := o.Clock()
	tr := newTracker(start)
	task := o.Progress.Task("boot "+n.Name, int64(len(order)))
	mac := n.MAC.String()
	if mac == "" {
		mac = "52:54:00:00:00:01"
	}
	machine := qemu.Machine{Name: "krgimage-boot-test-" + n.Name, NetBoot: o.Media == "", NIC: bt.NIC, MAC: mac, MemoryMB: bt.Memory,
		Netdev: netdev, Netns: ns, ConsoleLog: res.Console, Log: log, Choice: o.Accel}
	if err := o.firmware(&machine, work, n.Name); err != nil {
		res.Error = err.Error()
		task.Done(true)
		return res
	}
	if o.MediaUSB {
		machine.USB = o.Media
	} else {
		machine.CDROM = o.Media
	}
	m, err := qemu.Start(machine)
	if err != nil {
		res.Error = err.Error()
		task.Done(true)
		return res
	}
	defer m.Stop()
	warned, fatal := make(chan string, 1), make(chan string, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		seen := 0
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			lines := m.LinesFrom(seen)
			seen += len(lines)
			for _, l := range lines {
				prev := tr.Last()
				ch := warned
				switch tr.line(l, o.Clock()) {
				case noProblem:
					ch = nil
				case fatalProblem:
					ch = fatal
				}
				select {
				case ch <- l:
				default:
				}
				if p := tr.Last(); p != prev {
					log.Info("boot phase reached", "phase", p, "elapsed", o.Clock().Sub(start).Round(100*time.Millisecond))
					task.SetCurrent(int64(index(p)))
					task.SetLabel(p)
				}
			}
		}
	}()
	waitCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	loginLine := make(chan error, 1)
	go func() {
		_, err := m.WaitPrompt(waitCtx, 0, o.Timeout, func(l string) bool { return strings.Contains(l, bt.Success) })
		loginLine <- err
	}()
	finish := func(passed bool, cause string) NodeResult {
		res.Passed = passed
		res.Accel = m.Accel().Name
		if at := m.Attempts(); len(at) > 1 {
			res.Attempts = at
		}
		res.Phase = tr.Last()
		res.Seconds = o.Clock().Sub(start).Seconds()
		res.Timeline = tr.Timeline()
		if !passed {
			res.Error = tr.explain(cause)
			log.Error("boot failed", "err", res.Error, "path", res.Console)
		}
		task.Done(!passed)
		return res
	}
wait:
	for {
		select {
		case err := <-loginLine:
			if err != nil {
				return finish(false, err.Error())
			}
			break wait
		case l := <-warned:
			// /init retries what failed: give it the chance, unless the
			// machine stops or the time runs out.
			log.Warn("the node reported a problem", "line", strings.TrimSpace(l))
		case <-fatal:
			return finish(false, "the boot cannot go on")
		case <-ctx.Done():
			return finish(false, "interrupted")
		}
	}
	tr.reach(PhaseLogin, o.Clock())
	log.Info("login prompt reached", "elapsed", o.Clock().Sub(start).Round(100*time.Millisecond))
	if login.User != "" {
		id, checks, err := runChecks(waitCtx, m, bt, login)
		res.Hostname, res.Addresses, res.Checks = id.Hostname, id.Addresses, checks
		if err != nil {
			return finish(false, err.Error())
		}
		if o.Network == "netns" {
			// Our dhcpd.conf names and addresses each node by its MAC.
			if id.Hostname != n.Name || !slices.Contains(id.Addresses, n.IP.String()) {
				return finish(false, fmt.Sprintf("dhcpd should have made this node %s at %s; it is %q at %v", n.Name, n.IP, id.Hostname, id.Addresses))
			}
		}
		tr.reach(PhaseChecks, o.Clock())
	}
	return finish(true, "")
}

// identity is who a node says it is once booted.
type identity struct {
	Hostname  string
	Addresses []string
}

var ipv4 = regexp.MustCompile(`\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b`)

// kernelLine is a kernel message on the console, "[  103.812345] kvm: ...".
var kernelLine = regexp.MustCompile(`^\s*<?[0-9]*>?\[\s*[0-9]+\.[0-9]+\]`)

// withoutKernelLines drops the kernel's messages from a command's output:
// one printed before dmesg -n took effect would otherwise read as the
// hostname, or add the addresses of IP-Config's report. Checks keep them,
// as a check may look for a kernel message.
func withoutKernelLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if !kernelLine.MatchString(l) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// runChecks logs in on the serial console and runs each check, marking
// output with strings the console's echo of the command cannot contain.
func runChecks(ctx context.Context, m *qemu.Running, bt *recipes.BootTest, login consoleLogin) (identity, []CheckResult, error) {
	var id identity
	const step = 2 * time.Minute
	if err := m.Send(login.User + "\n"); err != nil {
		return id, nil, err
	}
	if _, err := m.WaitPrompt(ctx, 0, step, func(l string) bool { return strings.Contains(l, "assword:") }); err != nil {
		return id, nil, fmt.Errorf("no password prompt after the user name: %w", err)
	}
	mark := m.Mark()
	if err := m.Send(login.Password + "\n"); err != nil {
		return id, nil, err
	}
	// login flushes what is typed before the shell starts: wait for the
	// prompt, or the refusal.
	answer, err := m.WaitPrompt(ctx, mark, step, func(l string) bool {
		t := strings.TrimRight(l, " ")
		return strings.Contains(l, "Login incorrect") || strings.HasSuffix(t, "#") || strings.HasSuffix(t, "$")
	})
	if err != nil {
		return id, nil, fmt.Errorf("no shell prompt after the password: %w", err)
	}
	if strings.Contains(answer, "Login incorrect") {
		if login.OneTime {
			return id, nil, fmt.Errorf("login as %q with the one-time password refused (does the image's PAM or securetty refuse %s on the serial console?)", login.User, login.User)
		}
		return id, nil, fmt.Errorf("login as %q refused: wrong boot_test.login password?", login.User)
	}
	n := 0
	run := func(cmd string) (string, int, error) {
		n++
		begin, end := fmt.Sprintf("KRGB%dEGIN", n), fmt.Sprintf("KRGE%dND", n)
		line := fmt.Sprintf("echo KRGB%d\"\"EGIN; (%s) 2>&1; echo KRGE%d\"\"ND $?\n", n, cmd, n)
		from := m.Mark()
		if err := m.Send(line); err != nil {
			return "", 0, err
		}
		endLine, err := m.WaitAfter(ctx, from, step, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), end) })
		if err != nil {
			return "", 0, fmt.Errorf("no answer to %q (login refused?): %w", cmd, err)
		}
		rc := -1
		fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(endLine), end)), "%d", &rc)
		lines := m.LinesFrom(from)
		var out []string
		in := false
		for _, l := range lines {
			t := strings.TrimSpace(l)
			switch {
			case t == begin:
				in, out = true, nil
			case strings.HasPrefix(t, end):
				in = false
			case in:
				out = append(out, strings.TrimRight(l, "\r"))
			}
		}
		return strings.Join(out, "\n"), rc, nil
	}
	// The first command also proves the login worked; kernel messages
	// (udev loading modules late) would break into the answers.
	host, rc, err := run("dmesg -n 1 2>/dev/null; hostname")
	if err != nil {
		return id, nil, err
	}
	if rc != 0 {
		return id, nil, fmt.Errorf("hostname failed after login: %s", host)
	}
	id.Hostname = strings.TrimSpace(withoutKernelLines(host))
	// lenny's hostname has no -I.
	addrs, _, err := run("hostname -I 2>/dev/null || ip -4 -o addr show")
	if err != nil {
		return id, nil, err
	}
	id.Addresses = ipv4.FindAllString(withoutKernelLines(addrs), -1)
	var results []CheckResult
	for _, c := range bt.Checks {
		out, rc, err := run(c.Run)
		cr := CheckResult{Name: c.Name, Output: out, Passed: err == nil && rc == 0 && strings.Contains(out, c.Expect)}
		results = append(results, cr)
		if err != nil {
			return id, results, err
		}
		if !cr.Passed {
			why := fmt.Sprintf("exit status %d", rc)
			if rc == 0 {
				why = fmt.Sprintf("output lacks %q", c.Expect)
			}
			return id, results, fmt.Errorf("check %q (%s) failed: %s:\n%s", c.Name, c.Run, why, out)
		}
	}
	m.Send("exit\n")
	return id, results, nil
}

// server is a process of the boot server, in its own process group, with
// its output in a log file.
type server struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// startLogged starts argv as the server name, logging to logPath.
func startLogged(name string, argv []string, logPath string) (*server, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	s := &server{name: name, cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = f, f
	s.cmd.SysProcAttr = run.GroupAttr()
	if err := s.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() { s.cmd.Wait(); f.Close(); close(s.done) }()
	return s, nil
}

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop ends the server's whole group: SIGTERM, then SIGKILL after 5 s.
func (s *server) stop() {
	run.StopGroup(s.cmd.Process.Pid, s.done, 5*time.Second)
}
