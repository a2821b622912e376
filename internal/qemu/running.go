package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/krgimage/krgimage/internal/run"
)

// Running is a started machine.
type Running struct {
	m    Machine
	bin  string
	done chan struct{}

	mu       sync.Mutex
	proc     *process
	stopping bool
	// ended says how the last QEMU process ended, for waiters.
	ended    string
	attempts []Attempt
	lines    []string
	partial  string
	waiters  []*waiter
}

// Attempt is one start of the machine's QEMU: a KVM guest that dies with
// no output is started again under TCG, and both consoles are kept.
type Attempt struct {
	Accel   string `json:"accel"`
	Console string `json:"console,omitempty"`
	// Error says why the attempt was given up; empty for the last one.
	Error string `json:"error,omitempty"`
}

// process is one QEMU process of a Running.
type process struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// out is the guest's serial console, and only that: whether a guest
	// said anything is told from it alone.
	out    io.Reader
	log    *consoleLog
	stderr *qemuStderr
	exited chan struct{}
	accel  Accel
}

// consoleLog is an attempt's console log, written by the guest's console
// and QEMU's stderr at once.
type consoleLog struct {
	mu sync.Mutex
	w  io.WriteCloser
}

func (l *consoleLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (l *consoleLog) Close() error { return l.w.Close() }

// qemuStderr copies QEMU's own messages (warnings about host CPU features,
// its errors) to the console log, where they help diagnose a boot, and
// keeps their end for saying how QEMU stopped. They are not the guest's:
// QEMU warns routinely, and a KVM guest that died at once is silent
// whatever QEMU said.
type qemuStderr struct {
	log  io.Writer
	tail []byte
}

func (e *qemuStderr) Write(b []byte) (int, error) {
	e.log.Write(b)
	e.tail = append(e.tail, b...)
	if n := len(e.tail); n > 4096 {
		e.tail = e.tail[n-4096:]
	}
	return len(b), nil
}

type waiter struct {
	match func(string) bool
	ch    chan string
	// prompt also matches the unfinished line: a prompt has no newline,
	// while other output may arrive in pieces.
	prompt bool
}

// Start boots m. Stop it with Stop whatever happens.
func Start(m Machine) (*Running, error) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, ErrMissing
	}
	accel, err := m.Choice.Accelerator(m.Log)
	if err != nil {
		return nil, err
	}
	r := &Running{m: m, bin: bin, done: make(chan struct{})}
	p, err := r.launch(accel)
	if err != nil {
		return nil, err
	}
	go r.follow(p)
	return r, nil
}

// launch starts QEMU under accel, its console going to the machine's log.
func (r *Running) launch(accel Accel) (*process, error) {
	p, err := r.newProcess(accel)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		p.log.Close()
		return nil, fmt.Errorf("the machine was stopped")
	}
	if err := p.cmd.Start(); err != nil {
		p.log.Close()
		return nil, err
	}
	r.proc = p
	r.attempts = append(r.attempts, Attempt{Accel: accel.Name, Console: r.m.ConsoleLog})
	return p, nil
}

// newProcess prepares QEMU's command under accel, with its console log.
func (r *Running) newProcess(accel Accel) (*process, error) {
	argv := append([]string{r.bin}, r.m.Args(accel)...)
	if r.m.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", r.m.Netns}, argv...)
	}
	p := &process{cmd: exec.Command(argv[0], argv[1:]...), exited: make(chan struct{}), accel: accel, log: &consoleLog{w: nopWC{}}}
	p.cmd.SysProcAttr = run.GroupAttr()
	var err error
	if p.out, err = p.cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if r.m.ConsoleLog != "" {
		if p.log.w, err = os.Create(r.m.ConsoleLog); err != nil {
			return nil, err
		}
	}
	p.stderr = &qemuStderr{log: p.log}
	p.cmd.Stderr = p.stderr
	return p, nil
}

// follow reads p's console until it exits, then starts the machine again
// under TCG if it was a KVM guest that said nothing, or ends the machine.
func (r *Running) follow(p *process) {
	silent := r.read(p)
	ended := exitText(p.cmd.Wait(), lastLine(string(p.stderr.tail)))
	p.log.Close()
	close(p.exited)
	r.mu.Lock()
	stopping := r.stopping
	r.mu.Unlock()
	if silent && p.accel.KVM() && !stopping {
		why := fmt.Sprintf("a KVM guest stopped with no output (%s)", ended)
		if accel, ok := r.m.Choice.orProcess().distrust(r.m.Log, why); ok {
			r.keepConsole(why)
			next, err := r.launch(accel)
			if err == nil {
				r.follow(next)
				return
			}
			ended = fmt.Sprintf("%s; starting it again under TCG: %v", why, err)
		}
	}
	r.mu.Lock()
	r.ended = ended
	r.mu.Unlock()
	close(r.done)
}

// exitText says how a QEMU process ended, and the last thing it said.
func exitText(err error, said string) string {
	var ee *exec.ExitError
	s := "QEMU exited with status 0"
	switch {
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		s = fmt.Sprintf("QEMU exited with status %d", ee.ExitCode())
	case err != nil:
		s = "QEMU stopped: " + err.Error()
	}
	if said != "" {
		s += ": " + said
	}
	return s
}

// read feeds the console to the lines and waiters, and reports whether
// the guest printed nothing at all.
func (r *Running) read(p *process) (silent bool) {
	// A login prompt ends without a newline: lines are delivered as
	// they complete, and the unfinished one is offered to prompt waiters.
	buf := make([]byte, 4096)
	var partial []byte
	total := 0
	for {
		n, err := p.out.Read(buf)
		total += n
		if n > 0 {
			p.log.Write(buf[:n])
			partial = append(partial, buf[:n]...)
			for {
				i := bytes.IndexByte(partial, '\n')
				if i < 0 {
					break
				}
				r.line(strings.TrimRight(string(partial[:i]), "\r"), true)
				partial = partial[i+1:]
			}
			if len(partial) > 0 {
				r.line(strings.TrimRight(string(partial), "\r"), false)
			}
		}
		if err != nil {
			if len(partial) > 0 {
				r.line(strings.TrimRight(string(partial), "\r"), true)
			}
			return total == 0
		}
	}
}

// keepConsole moves the failed attempt's console log aside
// (console-node1.log becomes console-node1.kvm.log), so that the next
// attempt writes the log callers read.
func (r *Running) keepConsole(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := &r.attempts[len(r.attempts)-1]
	a.Error = why
	if a.Console == "" {
		return
	}
	ext := filepath.Ext(a.Console)
	kept := strings.TrimSuffix(a.Console, ext) + "." + a.Accel + ext
	if err := os.Rename(a.Console, kept); err == nil {
		a.Console = kept
	}
}

// Attempts lists the QEMU processes the machine took, the last one first
// to be the machine; a KVM guest that died silently comes before.
func (r *Running) Attempts() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Attempt(nil), r.attempts...)
}

// Accel is the accelerator the machine runs under now.
func (r *Running) Accel() Accel {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc.accel
}

// Send types s on the serial console.
func (r *Running) Send(s string) error {
	r.mu.Lock()
	stdin := r.proc.stdin
	r.mu.Unlock()
	_, err := io.WriteString(stdin, s)
	return err
}

// Done is closed when QEMU has exited for good.
func (r *Running) Done() <-chan struct{} { return r.done }

// Stop ends the machine, and any attempt still to come.
func (r *Running) Stop() {
	r.mu.Lock()
	r.stopping = true
	p := r.proc
	r.mu.Unlock()
	if p.cmd.Process != nil {
		run.StopGroup(p.cmd.Process.Pid, p.exited, 5*time.Second)
	}
	<-r.done
}

type nopWC struct{}

func (nopWC) Write(p []byte) (int, error) { return len(p), nil }
func (nopWC) Close() error                { return nil }
