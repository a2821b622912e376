package bootstrap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/krgimage/krgimage/internal/debarchive"
	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
)

// Options describe the base system to create. They mirror debootstrap's
// own options; a recipe is translated into them by the pipeline.
type Options struct {
	Suite      string
	Arch       string
	Variant    string // important (debootstrap's default), minbase, buildd
	Mirror     string
	Components []string
	Include    []string
	Exclude    []string
	// Keyring verifies the Release file; empty uses debootstrap's default.
	Keyring string
	// Insecure passes --no-check-gpg. Only a recipe that says so sets it.
	Insecure bool
	// Archived accepts the expired keys and weak signatures of an
	// archived suite (native method; debootstrap's gpgv accepts them
	// anyway).
	Archived bool
	// Lock pins the native method to a lockfile's packages.
	Lock *Lockfile
	// Foreign runs debootstrap --foreign, then the second stage inside the
	// target under qemu-user-static.
	Foreign bool
	// MergedUsr is "auto", "yes" or "no".
	MergedUsr string
	Target    string
}

// Debootstrap drives the real debootstrap.
type Debootstrap struct {
	Runner *run.Runner
	Log    *slog.Logger
	// Binary is the debootstrap executable (looked up in PATH when it has
	// no slash).
	Binary string
	// Host answers the questions preflight asks about this machine.
	Host Host
}

// NewDebootstrap returns a driver for the debootstrap in PATH.
func NewDebootstrap(r *run.Runner, log *slog.Logger) *Debootstrap {
	return &Debootstrap{Runner: r, Log: log, Binary: "debootstrap", Host: SystemHost()}
}

// Args returns debootstrap's command line for o, without the program name.
func Args(o Options) []string {
	var a []string
	if o.Arch != "" {
		a = append(a, "--arch="+o.Arch)
	}
	if o.Variant != "" && o.Variant != "important" {
		a = append(a, "--variant="+o.Variant)
	}
	if len(o.Components) > 0 {
		a = append(a, "--components="+strings.Join(o.Components, ","))
	}
	if len(o.Include) > 0 {
		a = append(a, "--include="+strings.Join(o.Include, ","))
	}
	if len(o.Exclude) > 0 {
		a = append(a, "--exclude="+strings.Join(o.Exclude, ","))
	}
	switch {
	case o.Insecure:
		a = append(a, "--no-check-gpg")
	case o.Keyring != "":
		a = append(a, "--keyring="+o.Keyring)
	}
	switch o.MergedUsr {
	case "yes":
		a = append(a, "--merged-usr")
	case "no":
		a = append(a, "--no-merged-usr")
	}
	if o.Foreign {
		a = append(a, "--foreign")
	}
	return append(a, o.Suite, o.Target, o.Mirror)
}

func (d *Debootstrap) binary() (string, error) {
	p, err := exec.LookPath(d.Binary)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found: install it with apt-get install debootstrap", ErrMissingTool, d.Binary)
	}
	return p, nil
}

// Preflight checks everything that can be checked before debootstrap
// starts, so that a build fails in seconds rather than halfway.
func (d *Debootstrap) Preflight(ctx context.Context, o Options) error {
	var errs []error
	if d.Host.Geteuid() != 0 {
		errs = append(errs, fmt.Errorf("%w: debootstrap creates device nodes, sets owners and chroots: run krgimage build as root", ErrNotRoot))
	}
	if _, err := d.binary(); err != nil {
		errs = append(errs, err)
	}
	keyring := true
	if !o.Insecure {
		if _, err := exec.LookPath("gpgv"); err != nil {
			errs = append(errs, fmt.Errorf("%w: gpgv not found (debootstrap verifies Release with it): install it with apt-get install gpgv", ErrMissingTool))
		}
		if o.Keyring != "" {
			if _, err := os.Stat(o.Keyring); err != nil {
				errs = append(errs, fmt.Errorf("keyring %s: %w", o.Keyring, err))
				keyring = false
			}
		}
	}
	if empty, err := fsutil.IsEmptyDir(o.Target); err != nil {
		errs = append(errs, fmt.Errorf("target %s: %w", o.Target, err))
	} else if !empty {
		errs = append(errs, fmt.Errorf("%w: %s already has files in it", ErrTargetNotEmpty, o.Target))
	}
	if err := d.checkArch(o); err != nil {
		errs = append(errs, err)
	}
	// Without its keyring the mirror's Release cannot be checked, and
	// the missing keyring is reported already.
	if keyring {
		if err := CheckMirror(ctx, d.Host.HTTP(), o, time.Time{}, d.Log); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *Debootstrap) checkArch(o Options) error {
	machine := d.Host.Machine()
	if canRunNatively(machine, o.Arch) {
		return nil
	}
	qemu := qemuArch(o.Arch)
	if o.Foreign {
		if _, err := exec.LookPath("qemu-" + qemu + "-static"); err != nil {
			return fmt.Errorf("%w: a foreign %s bootstrap needs qemu-%s-static: install qemu-user-static", ErrMissingTool, o.Arch, qemu)
		}
		if !d.Host.Binfmt(qemu) {
			return fmt.Errorf("%w: no binfmt_misc handler for %s: install qemu-user-static and binfmt-support", ErrArch, qemu)
		}
		return nil
	}
	if d.Host.Binfmt(qemu) {
		// debootstrap runs the target's binaries through the registered
		// emulator without help.
		return nil
	}
	if o.Arch == "amd64" && is32bitX86(machine) {
		return fmt.Errorf("%w: amd64 images need a 64-bit build host, and this one is %s: build on an x86_64 machine, or set bootstrap.foreign: true with qemu-user-static installed", ErrArch, machine)
	}
	return fmt.Errorf("%w: this %s host cannot run %s binaries: set bootstrap.foreign: true and install qemu-user-static", ErrArch, machine, o.Arch)
}

// Run creates the base system in o.Target. debootstrap runs contained: its
// mounts live in a private mount namespace and dpkg and the rest in a PID
// namespace, so however debootstrap ends, no mount is left on the host and
// nothing goes on writing into the target.
func (d *Debootstrap) Run(ctx context.Context, o Options, task *progress.Task) error {
	bin, err := d.binary()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Target, 0o755); err != nil {
		return err
	}
	p := &progressParser{log: d.Log, task: task}
	// The command line is logged and quoted in errors: not the mirror's
	// credentials.
	shown := o
	shown.Mirror = debarchive.RedactURL(o.Mirror)
	cmd := run.Cmd{
		Path:    bin,
		Args:    Args(o),
		Display: run.Quote(append([]string{bin}, Args(shown)...)),
		Line:    p.line,
		// Only root may unshare; debootstrap itself will say it needs root.
		Contained: os.Geteuid() == 0,
	}
	if err := d.Runner.Run(ctx, cmd); err != nil {
		return d.failure(o, err)
	}
	if o.Foreign {
		if err := d.secondStage(ctx, o, p); err != nil {
			return d.failure(o, err)
		}
	}
	d.Log.Info("base system installed", "retrieved", p.count(phaseRetrieve), "unpacked", p.count(phaseUnpack), "configured", p.count(phaseConfigure))
	return nil
}

func (d *Debootstrap) secondStage(ctx context.Context, o Options, p *progressParser) error {
	qemu := "qemu-" + qemuArch(o.Arch) + "-static"
	src, err := exec.LookPath(qemu)
	if err != nil {
		return err
	}
	dst := filepath.Join(o.Target, "usr/bin", qemu)
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		return err
	}
	defer os.Remove(dst)
	return d.Runner.Run(ctx, run.Cmd{
		Path:      "chroot",
		Args:      []string{o.Target, "/debootstrap/debootstrap", "--second-stage"},
		Line:      p.line,
		Contained: true,
	})
}

// failure adds the tail of debootstrap.log, where debootstrap writes what
// dpkg said, to its error.
func (d *Debootstrap) failure(o Options, err error) error {
	tail := readTail(filepath.Join(o.Target, "debootstrap", "debootstrap.log"), 25)
	if len(tail) == 0 {
		return fmt.Errorf("debootstrap: %w", err)
	}
	return fmt.Errorf("debootstrap: %w\nlast lines of %s:\n  | %s", err,
		filepath.Join(o.Target, "debootstrap", "debootstrap.log"), strings.Join(tail, "\n  | "))
}

func readTail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

type phase int

const (
	phaseRetrieve phase = iota
	phaseExtract
	phaseUnpack
	phaseConfigure
	nPhases
)

var phaseNames = [nPhases]string{"retrieving", "extracting", "unpacking", "configuring"}

var (
	pkgLineRE = regexp.MustCompile(`^I: (Retrieving|Extracting|Unpacking|Configuring) ([a-z0-9][a-z0-9+.-]*?(?::[a-z0-9-]+)?)(?:\.\.\.)?(?: |$)`)
	stageRE   = regexp.MustCompile(`^I: (Retrieving (?:InRelease|Release|Packages)|Checking Release signature|Valid Release signature.*|Resolving dependencies of .*|Installing core packages.*|Unpacking the base system.*|Configuring the base system.*|Configuring required packages.*|Unpacking required packages.*|Base system installed successfully.*)`)
)

// progressParser turns debootstrap's "I: Retrieving foo 1.0" lines into
// counters: how many packages were retrieved, extracted, unpacked and
// configured.
type progressParser struct {
	log    *slog.Logger
	task   *progress.Task
	counts [nPhases]atomic.Int64
	cur    phase
	total  int64
}

func (p *progressParser) count(ph phase) int64 { return p.counts[ph].Load() }

func (p *progressParser) line(l string) {
	if m := stageRE.FindStringSubmatch(l); m != nil {
		msg := strings.TrimSuffix(m[1], "...")
		p.log.Info(msg)
		p.task.SetLabel(strings.ToLower(msg))
		return
	}
	if m := pkgLineRE.FindStringSubmatch(l); m != nil {
		var ph phase
		switch m[1] {
		case "Retrieving":
			ph = phaseRetrieve
		case "Extracting":
			ph = phaseExtract
		case "Unpacking":
			ph = phaseUnpack
		default:
			ph = phaseConfigure
		}
		n := p.counts[ph].Add(1)
		if ph != p.cur {
			p.cur = ph
			if ph != phaseRetrieve && p.total == 0 {
				// Everything retrieved is installed: now we know the total.
				p.total = p.counts[phaseRetrieve].Load()
			}
			p.task.SetTotal(p.total)
		}
		p.task.SetCurrent(n)
		p.task.SetLabel(phaseNames[ph] + " " + m[2])
		return
	}
	if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
		level := slog.LevelWarn
		if l[0] == 'E' {
			level = slog.LevelError
		}
		p.log.Log(context.Background(), level, strings.TrimSpace(l[3:]), "cmd", "debootstrap")
	}
}
