// Package netns makes throwaway network namespaces for boot tests: the NFS
// server, DHCP and TFTP servers and QEMU guests of one test live in one, so
// they use standard ports and private addresses without touching the host's
// network or another test's.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
)

// Namespace is a network namespace made with "ip netns add".
type Namespace struct{ Name string }

// New creates a namespace with its loopback up. prefix names it in
// "ip netns list".
func New(prefix string) (*Namespace, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	ns := &Namespace{Name: prefix + "-" + hex.EncodeToString(b[:])}
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

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
