package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Display owns the terminal area where tasks are drawn. A nil or disabled
// Display accepts every call and draws nothing.
type Display struct {
	p      *mpb.Progress
	mu     sync.Mutex
	redact func(string) string
}

// New returns a Display drawing on w when enabled is true.
func New(w io.Writer, enabled bool) *Display {
	if !enabled {
		return &Display{}
	}
	return &Display{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond))}
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Enabled reports whether anything is drawn.
func (d *Display) Enabled() bool { return d != nil && d.p != nil }

// LogWriter returns the writer logs should use so that they scroll above
// the bars instead of tearing them.
func (d *Display) LogWriter(fallback io.Writer) io.Writer {
	if !d.Enabled() {
		return fallback
	}
	return d.p
}

// Redact sets what every task's name and label pass through before they
// are drawn: labels come from subprocess output (the package being
// unpacked), which may hold a value the recipe withholds. It applies to
// the tasks started after it.
func (d *Display) Redact(redact func(string) string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.redact = redact
}

// Task starts a new line of progress. total may be zero when unknown.
func (d *Display) Task(name string, total int64) *Task {
	t := &Task{}
	t.label.Store("")
	if !d.Enabled() {
		return t
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	redact := d.redact
	if redact == nil {
		redact = func(s string) string { return s }
	}
	start := time.Now()
	counter := decor.Any(func(s decor.Statistics) string {
		if s.Total > 0 {
			return fmt.Sprintf("%d/%d", s.Current, s.Total)
		}
		if s.Current > 0 {
			return fmt.Sprintf("%d", s.Current)
		}
		return ""
	}, decor.WCSyncSpace)
	opts := []mpb.BarOption{
		mpb.PrependDecorators(decor.Name(redact(name), decor.WCSyncSpaceR), counter),
		mpb.AppendDecorators(
			decor.Any(func(decor.Statistics) string { return time.Since(start).Round(time.Second).String() }, decor.WCSyncSpace),
			decor.Any(func(decor.Statistics) string { return redact(t.label.Load().(string)) }, decor.WCSyncSpace),
		),
		mpb.BarFillerClearOnComplete(),
	}
	if total > 0 {
		t.bar = d.p.AddBar(total, opts...)
	} else {
		t.bar = d.p.AddSpinner(0, opts...)
	}
	return t
}

// Wait stops drawing after all tasks are done.
func (d *Display) Wait() {
	if d.Enabled() {
		d.p.Wait()
	}
}

// Task is one line of progress.
type Task struct {
	bar   *mpb.Bar
	label atomic.Value
}

// SetLabel sets the text shown after the counters (the current phase or
// item).
func (t *Task) SetLabel(s string) { t.label.Store(s) }

// SetTotal changes the expected count.
func (t *Task) SetTotal(n int64) {
	if t.bar != nil {
		t.bar.SetTotal(n, false)
	}
}

// SetCurrent sets the count done so far.
func (t *Task) SetCurrent(n int64) {
	if t.bar != nil {
		t.bar.SetCurrent(n)
	}
}

// Increment counts one more item done.
func (t *Task) Increment() {
	if t.bar != nil {
		t.bar.Increment()
	}
}

// Done completes the task; failed tasks are marked aborted.
func (t *Task) Done(failed bool) {
	if t.bar == nil {
		return
	}
	if failed {
		t.bar.Abort(false)
		return
	}
	t.bar.SetTotal(-1, true)
}
