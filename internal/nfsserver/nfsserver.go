// Package nfsserver runs a userspace NFS server (nfs-ganesha with its VFS
// backend, and the rpcbind it registers with) for boot tests: the kernel
// NFS server is not needed, or available, on a build machine.
//
// In a network namespace (the normal case, as root) the server owns the
// namespace's standard ports and a private /run, so several servers can
// run side by side, each seen by its own QEMU guests as 10.0.2.2 or the
// recipe's server address.
package nfsserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/krgimage/krgimage/internal/run"
)

// Export is one exported directory.
type Export struct {
	// Path is the directory on the host.
	Path string
	// Pseudo is its NFSv4 path; the same as Path by default, so that
	// nfsroot=SERVER:PATH works for both versions.
	Pseudo   string
	ReadOnly bool
}

// Options configure a server.
type Options struct {
	Exports []Export
	// Dir holds the configuration, the log and NFSv4 recovery state.
	Dir string
	// Netns is the network namespace to run in ("" runs on the host, where
	// a system rpcbind must already run and Ports must be free).
	Netns string
	// NFSPort and MountPort default to 2049 and 20048.
	NFSPort, MountPort int
	// Binds are files the server alone sees in place of others: they are
	// bind-mounted in its private mount namespace, so the clients read
	// them while the host's tree, and any other server of it, does not.
	Binds []Bind
	Log   *slog.Logger
}

// Bind shows Source at Target, a path inside an export. Source must be
// on Target's filesystem: ganesha's VFS backend opens what it serves by
// file handle on the export's filesystem.
type Bind struct {
	Source, Target string
}

// Server is a running NFS server.
type Server struct {
	cmd *exec.Cmd
	// done is closed when ganesha was waited for, with its result in
	// waitErr.
	done    chan struct{}
	waitErr error
	LogPath string
	o       Options
}

// ErrMissing: ganesha or rpcbind is not installed.
var ErrMissing = errors.New("NFS server not installed")

// Config renders ganesha's configuration for the exports.
func Config(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, `NFS_CORE_PARAM {
	NFS_Port = %d;
	MNT_Port = %d;
	Protocols = 3, 4;
	Enable_NLM = false;
	Enable_RQUOTA = false;
	# NFSv3 clients mount the same paths as NFSv4 ones: the recipe's NFS
	# path, whatever directory holds the image on this machine.
	Mount_Path_Pseudo = true;
}
NFSV4 {
	# Boot tests start the server right before the guest: no clients to
	# wait for.
	Graceless = true;
	RecoveryBackend = fs;
	RecoveryRoot = %q;
}
LOG {
	Default_Log_Level = EVENT;
}
`, o.NFSPort, o.MountPort, filepath.Join(o.Dir, "recovery"))
	for i, e := range o.Exports {
		access := "RW"
		if e.ReadOnly {
			access = "RO"
		}
		pseudo := e.Pseudo
		if pseudo == "" {
			pseudo = e.Path
		}
		fmt.Fprintf(&b, `EXPORT {
	Export_Id = %d;
	Path = %q;
	Pseudo = %q;
	Access_Type = %s;
	Squash = No_Root_Squash;
	SecType = sys;
	Protocols = 3, 4;
	Transports = TCP, UDP;
	FSAL {
		Name = VFS;
	}
}
`, i+1, e.Path, pseudo, access)
	}
	return b.String()
}

// Check says whether the NFS server can run here, naming the Debian
// package to install when it cannot.
func Check() error {
	_, _, err := binaries()
	return err
}

func binaries() (ganesha, rpcbind string, err error) {
	ganesha, err = exec.LookPath("ganesha.nfsd")
	if err != nil {
		return "", "", fmt.Errorf("%w: ganesha.nfsd not found: install nfs-ganesha and nfs-ganesha-vfs", ErrMissing)
	}
	// Without its VFS backend ganesha starts and exports nothing.
	if m, _ := filepath.Glob("/usr/lib/*/ganesha/libfsalvfs.so*"); len(m) == 0 {
		if m, _ := filepath.Glob("/usr/lib*/ganesha/libfsalvfs.so*"); len(m) == 0 {
			return "", "", fmt.Errorf("%w: ganesha's VFS backend (libfsalvfs.so) not found: install nfs-ganesha-vfs", ErrMissing)
		}
	}
	// ganesha finds the filesystem of each export in /etc/mtab, which a
	// container or chroot may lack.
	if _, err := os.Stat("/etc/mtab"); err != nil {
		return "", "", errors.New("ganesha reads the mount table from /etc/mtab, which is missing: ln -s ../proc/self/mounts /etc/mtab")
	}
	rpcbind, err = run.LookSbin("rpcbind")
	if err != nil {
		return "", "", fmt.Errorf("%w: rpcbind not found: install rpcbind", ErrMissing)
	}
	return ganesha, rpcbind, nil
}

// Start starts rpcbind and ganesha and waits until ganesha serves.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.NFSPort == 0 {
		o.NFSPort = 2049
	}
	if o.MountPort == 0 {
		o.MountPort = 20048
	}
	ganesha, rpcbind, err := binaries()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "recovery"), 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(o.Dir, "ganesha.conf")
	if err := os.WriteFile(conf, []byte(Config(o)), 0o644); err != nil {
		return nil, err
	}
	s := &Server{LogPath: filepath.Join(o.Dir, "ganesha.log"), o: o, done: make(chan struct{})}
	// The server is PID 1 of a PID namespace of its own, and --kill-child
	// ends it when unshare dies, which krgimage's death makes happen: the
	// kernel then kills the whole namespace, the rpcbind it started
	// included, which would otherwise outlive a killed krgimage and keep
	// the network namespace in use.
	argv := []string{"unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", serverScript(o, ganesha, rpcbind,
		"-F", "-f", conf, "-L", s.LogPath, "-p", filepath.Join(o.Dir, "ganesha.pid")), "krgimage-nfs"}
	// The paths reach the script as its arguments, never as its text.
	for _, b := range o.Binds {
		argv = append(argv, b.Source, b.Target)
	}
	if o.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", o.Netns}, argv...)
	}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.SysProcAttr = run.GroupAttr()
	out, err := os.Create(filepath.Join(o.Dir, "server.out"))
	if err != nil {
		return nil, err
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	go func() { s.waitErr = s.cmd.Wait(); out.Close(); close(s.done) }()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if o.Log != nil {
		o.Log.Info("NFS server ready", "netns", o.Netns, "exports", len(o.Exports), "path", o.Dir)
	}
	return s, nil
}

// serverScript is the shell program that starts the server in its own
// mount namespace: the binds (its arguments, two by two), then, in a
// network namespace, a private /run with an rpcbind of its own, then
// ganesha.
func serverScript(o Options, ganesha, rpcbind string, args ...string) string {
	var b strings.Builder
	b.WriteString(`while [ $# -ge 2 ]; do mount --bind -- "$1" "$2" || exit 1; shift 2; done` + "\n")
	if o.Netns != "" {
		// A private /run keeps this rpcbind's socket and ganesha's state
		// apart from any other server's. ganesha gives up when it cannot
		// register with rpcbind, and a loaded machine can take seconds to
		// bring rpcbind's UDP and TCP listeners up: wait until both answer.
		rpcinfo := filepath.Join(filepath.Dir(rpcbind), "rpcinfo")
		fmt.Fprintf(&b, `mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/rpcbind &&
%s -f & i=0
until %s -u 127.0.0.1 100000 2 >/dev/null 2>&1 && %s -t 127.0.0.1 100000 2 >/dev/null 2>&1; do
	i=$((i+1)); [ $i -lt 300 ] || { echo "krgimage: rpcbind did not answer within 30s" >&2; exit 1; }; sleep 0.1
done
`, rpcbind, rpcinfo, rpcinfo)
	}
	b.WriteString("exec " + run.Quote(append([]string{ganesha}, args...)))
	return b.String()
}

// waitReady waits for ganesha's "NFS SERVER INITIALIZED".
func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("the NFS server exited at start (%v): %s", s.waitErr, s.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if b, err := os.ReadFile(s.LogPath); err == nil && strings.Contains(string(b), "NFS SERVER INITIALIZED") {
			// ganesha serves on even when an export failed: nodes would
			// only see their mounts refused.
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "Could not create export") || strings.Contains(l, "Lookup failed on path") {
					return fmt.Errorf("the NFS server could not export a directory: %s (see %s)", strings.TrimSpace(l[strings.LastIndex(l, "] ")+1:]), s.LogPath)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("the NFS server did not start within 60s: %s", s.tail())
}

// tail is the end of the server's logs, for errors.
func (s *Server) tail() string {
	var lines []string
	for _, p := range []string{filepath.Join(s.o.Dir, "server.out"), s.LogPath} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) > 12 {
				lines = lines[1:]
			}
		}
		f.Close()
	}
	return strings.Join(lines, "\n")
}

// Stop kills the server's whole process group and waits for it.
func (s *Server) Stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	run.StopGroup(s.cmd.Process.Pid, s.done, 5*time.Second)
	// Anything ganesha left in the group goes too.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	return nil
}
