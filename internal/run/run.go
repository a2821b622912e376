package run

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TailLines is how many lines of output an Error keeps.
const TailLines = 20

// DefaultEnv is the environment every command starts from. Nothing of the
// host's environment leaks into an image build unless a caller adds it.
var DefaultEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C",
	"LANG=C",
	"HOME=/root",
	"DEBIAN_FRONTEND=noninteractive",
	"DEBCONF_NONINTERACTIVE_SEEN=true",
}

// Cmd describes one command to run.
type Cmd struct {
	Path string
	Args []string
	// Display is how the command appears in logs and errors when Path and
	// Args would mislead (a re-executed helper, say).
	Display string
	// Env is added to DefaultEnv; a later entry overrides an earlier one.
	Env []string
	Dir string
	// Timeout bounds the command's run time; zero means no limit beyond ctx.
	Timeout time.Duration
	// Stdin, when set, feeds the command.
	Stdin io.Reader
	// Line, when set, sees every output line (stdout and stderr merged)
	// before it is logged, e.g. to drive a progress display.
	Line func(string)
	// Quiet logs output lines at debug level only; otherwise they are
	// logged at debug too, but the command start is logged at info.
	Quiet bool
	// Stdout, when set, receives the command's standard output instead of
	// the log; standard error is still logged.
	Stdout io.Writer
	// SysProcAttr extends the process attributes (a new mount namespace,
	// for instance). Setpgid is always set.
	SysProcAttr *syscall.SysProcAttr
	// Contained runs the command in a PID and mount namespace of its own
	// (Linux, as root), so that nothing it starts outlives it or krgimage:
	// for commands that fork work of their own into a tree krgimage
	// owns, as debootstrap does dpkg.
	Contained bool
}

// String renders the command as a shell-like line for logs and errors.
func (c Cmd) String() string {
	if c.Display != "" {
		return c.Display
	}
	return Quote(append([]string{c.Path}, c.Args...))
}

// Quote renders argv as a shell-like line, quoting what needs it.
func Quote(argv []string) string {
	parts := append([]string(nil), argv...)
	for i, p := range parts {
		if p == "" || strings.ContainsAny(p, " \t\n'\"\\$`") {
			parts[i] = "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
		}
	}
	return strings.Join(parts, " ")
}

func (c Cmd) name() string {
	if c.Display != "" {
		name, _, _ := strings.Cut(c.Display, " ")
		return name
	}
	return c.Path
}

// Error reports a command that failed to start, exited non-zero or was
// stopped.
type Error struct {
	Cmd      string
	ExitCode int // -1 when the command did not exit on its own
	Tail     []string
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.Cmd, e.Err)
	if len(e.Tail) > 0 {
		b.WriteString("\nlast lines of output:")
		for _, l := range e.Tail {
			b.WriteString("\n  | ")
			b.WriteString(l)
		}
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrTimeout is wrapped by Error when the command ran past its Timeout.
var ErrTimeout = errors.New("timed out")

// Runner starts commands. The zero value is not usable; use New.
type Runner struct {
	log *slog.Logger
	// KillGrace is how long a cancelled command gets between SIGTERM and
	// SIGKILL.
	KillGrace time.Duration
}

// New returns a Runner logging to log.
func New(log *slog.Logger) *Runner {
	return &Runner{log: log, KillGrace: 5 * time.Second}
}

// Run executes c and waits for it. Cancelling ctx sends SIGTERM to the
// command's whole process group, then SIGKILL after KillGrace.
func (r *Runner) Run(ctx context.Context, c Cmd) error {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.Timeout, ErrTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = mergeEnv(DefaultEnv, c.Env)
	cmd.Dir = c.Dir
	cmd.Stdin = c.Stdin
	attr := &syscall.SysProcAttr{}
	if c.SysProcAttr != nil {
		a := *c.SysProcAttr
		attr = &a
	}
	ownGroup(attr)
	if c.Contained {
		if err := contain(cmd, attr); err != nil {
			return &Error{Cmd: c.String(), ExitCode: -1, Err: err}
		}
	}
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = r.KillGrace

	pr, pw := io.Pipe()
	cmd.Stdout = pw
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	}
	cmd.Stderr = pw

	tail := newTail(TailLines)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			tail.add(line)
			if c.Line != nil {
				c.Line(line)
			}
			r.log.Debug(line, "cmd", c.name())
		}
		// Keep draining so a very long line cannot block the child.
		_, _ = io.Copy(io.Discard, pr)
	}()

	level := slog.LevelInfo
	if c.Quiet {
		level = slog.LevelDebug
	}
	r.log.Log(ctx, level, "running", "cmd", c.String())
	start := time.Now()
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
		// A process left in the group (a daemon a maintainer script
		// started) must not survive the command.
		_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL)
	}
	pw.Close()
	wg.Wait()
	r.log.Debug("finished", "cmd", c.name(), "elapsed", time.Since(start).Round(time.Millisecond))
	if err == nil {
		return nil
	}
	e := &Error{Cmd: c.String(), ExitCode: -1, Tail: tail.lines(), Err: err}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		e.ExitCode = exit.ExitCode()
		e.Err = fmt.Errorf("exit status %d", e.ExitCode)
	}
	// A command stopped by cancellation may still exit "normally" (with
	// 143, say): the cancellation is the news.
	if cause := context.Cause(ctx); cause != nil {
		switch {
		case errors.Is(cause, ErrTimeout):
			e.Err = fmt.Errorf("%w after %s", ErrTimeout, c.Timeout)
		case e.ExitCode == -1:
			e.Err = cause
		default:
			e.Err = fmt.Errorf("%w (%v)", cause, e.Err)
		}
	}
	return e
}

// Output runs c and returns its standard output; stderr goes to the log.
func (r *Runner) Output(ctx context.Context, c Cmd) ([]byte, error) {
	var b bytes.Buffer
	c.Stdout = &b
	err := r.Run(ctx, c)
	return b.Bytes(), err
}

func mergeEnv(base, extra []string) []string {
	idx := map[string]int{}
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range append(append([]string{}, base...), extra...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

type tailBuf struct {
	mu  sync.Mutex
	buf []string
	n   int
}

func newTail(n int) *tailBuf { return &tailBuf{n: n} }

func (t *tailBuf) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, s)
	if len(t.buf) > t.n {
		t.buf = t.buf[len(t.buf)-t.n:]
	}
}

func (t *tailBuf) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.buf...)
}

// LookSbin finds a system program in the sbin and bin directories first:
// cron jobs and su without a login shell leave /usr/sbin off the PATH.
func LookSbin(name string) (string, error) {
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return exec.LookPath(name)
}
