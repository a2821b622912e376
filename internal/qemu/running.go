package qemu

import (
	"bytes"
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
	err  error

	mu       sync.Mutex
	proc     *process
	stopping bool
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
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    io.Reader
	log    io.WriteCloser
	exited chan struct{}
	accel  Accel
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
	r := &Running{m: m, bin: bin, done: make(chan struct{})}
	p, err := r.launch(Accelerator(m.Log))
	if err != nil {
		return nil, err
	}
	go r.follow(p)
	return r, nil
}

// launch starts QEMU under accel, its console going to the machine's log.
func (r *Running) launch(accel Accel) (*process, error) {
	argv := append([]string{r.bin}, r.m.Args(accel)...)
	if r.m.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", r.m.Netns}, argv...)
	}
	p := &process{cmd: exec.Command(argv[0], argv[1:]...), exited: make(chan struct{}), accel: accel, log: nopWC{}}
	p.cmd.SysProcAttr = run.GroupAttr()
	var err error
	if p.out, err = p.cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	p.cmd.Stderr = p.cmd.Stdout
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if r.m.ConsoleLog != "" {
		if p.log, err = os.Create(r.m.ConsoleLog); err != nil {
			return nil, err
		}
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

// follow reads p's console until it exits, then starts the machine again
// under TCG if it was a KVM guest that said nothing, or ends the machine.
func (r *Running) follow(p *process) {
	silent := r.read(p)
	err := p.cmd.Wait()
	p.log.Close()
	close(p.exited)
	r.mu.Lock()
	stopping := r.stopping
	r.mu.Unlock()
	if silent && p.accel.KVM() && !stopping {
		why := fmt.Sprintf("a KVM guest stopped with no output (%v)", err)
		if accel, ok := state.distrust(r.m.Log, why); ok {
			r.keepConsole(why)
			next, lerr := r.launch(accel)
			if lerr == nil {
				r.follow(next)
				return
			}
			err = fmt.Errorf("%s; starting it again under TCG: %w", why, lerr)
		}
	}
	r.err = err
	close(r.done)
}

// read feeds the console to the lines and waiters, and reports whether
// the machine printed nothing at all.
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
