// Package netns makes throwaway network namespaces for boot tests: the NFS
// server, DHCP and TFTP servers and QEMU guests of one test live in one, so
// they use standard ports and private addresses without touching the host's
// network or another test's.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Namespace is a network namespace made with "ip netns add".
type Namespace struct{ Name string }

// New creates a namespace with its loopback up, named
// PREFIX-PID-RANDOM in "ip netns list": the PID of its maker is what lets
// Collect tell one a killed run left from one still in use.
func New(prefix string) (*Namespace, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	ns := &Namespace{Name: fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), hex.EncodeToString(b[:]))}
	if err := ip("netns", "add", ns.Name); err != nil {
		return nil, err
	}
	if err := ns.IP("link", "set", "lo", "up"); err != nil {
		ns.Delete()
		return nil, err
	}
	return ns, nil
}

// IP runs "ip -n NAME args...".
func (n *Namespace) IP(args ...string) error {
	return ip(append([]string{"-n", n.Name}, args...)...)
}

// Exec returns argv prefixed to run inside the namespace.
func (n *Namespace) Exec(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", n.Name}, argv...)
}

// Delete removes the namespace; processes still in it keep it alive
// until they exit.
func (n *Namespace) Delete() error {
	return ip("netns", "delete", n.Name)
}

// Collect deletes the namespaces New made with one of prefixes whose
// maker is gone and in which nothing runs: what a SIGKILLed run, which
// had no chance to delete its own, left behind. It returns their names.
func Collect(prefixes ...string) ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var gone []string
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ")
		if !slices.ContainsFunc(prefixes, func(prefix string) bool { return stale(prefix, name) }) {
			continue
		}
		if err := ip("netns", "delete", name); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, name)
	}
	return gone, errors.Join(errs...)
}

// stale reports whether name is PREFIX-PID-RANDOM with PID no longer
// running and no process in the namespace.
func stale(prefix, name string) bool {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return false
	}
	pidText, random, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || pid <= 0 || len(random) != 8 {
		return false
	}
	if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
		return false
	}
	pids, err := exec.Command("ip", "netns", "pids", name).Output()
	return err == nil && strings.TrimSpace(string(pids)) == ""
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
