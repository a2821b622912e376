package initramfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/testenv"
)

// busyboxSh runs script under the host's busybox sh, the shell /init
// runs under, with the initramfs functions loaded.
func busyboxSh(t *testing.T, script string, env ...string) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox not installed (make deps installs busybox-static)")
	}
	cmd := exec.Command(bb, "sh", "-c", ". ./scripts/functions.sh\n"+script)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("busybox sh: %v\n%s", err, out)
	}
	return string(out)
}

// resolveScript parses a command line and a DHCP lease the way /init does
// and prints what it decided.
const resolveScript = `
krg_parse_cmdline "$CMDLINE"
krg_parse_ip "$KRG_IP"
KRG_MY_IP=${KRG_IP_CLIENT:-${KRG_DHCP_IP:-}}
krg_resolve_root
echo "root=$KRG_ROOT mode=$KRG_MODE init=$KRG_INIT debug=$KRG_DEBUG"
echo "ip=$KRG_IP_AUTO client=$KRG_IP_CLIENT server=$KRG_IP_SERVER gw=$KRG_IP_GW bits=$(krg_mask_bits "$KRG_IP_MASK") host=$KRG_IP_HOST dev=$KRG_IP_DEV"
echo "nfs=$KRG_NFS_SERVER:$KRG_NFS_PATH opts=$KRG_NFS_OPTS"
echo "mount=$(krg_mount_options)"
`

func TestInitCommandLine(t *testing.T) {
	tests := []struct {
		name    string
		cmdline string
		env     []string // KRG_DHCP_* and KRG_DEFAULT_* as /init would have them
		want    []string
	}{
		{
			name:    "the seed's pxelinux line with nfsroot",
			cmdline: "console=ttyS0 ip=dhcp root=/dev/nfs nfsroot=10.11.12.1:/NFSROOT/kerrighed session_id=1 autonodeid=1",
			env:     []string{"KRG_DHCP_IP=10.11.12.101"},
			want: []string{"root=/dev/nfs mode= init=/sbin/init debug=", "ip=dhcp client= server= gw= bits=24 host= dev=",
				"nfs=10.11.12.1:/NFSROOT/kerrighed opts=", "mount=ro,vers=3,nolock,addr=10.11.12.1"},
		},
		{
			name:    "nfs options and NFSv4, read-write",
			cmdline: "root=/dev/nfs nfsroot=192.168.1.1:/srv/nfsroot/bookworm,vers=4,timeo=14 rw ip=dhcp",
			want:    []string{"nfs=192.168.1.1:/srv/nfsroot/bookworm opts=vers=4,timeo=14", "mount=rw,vers=4,timeo=14,addr=192.168.1.1"},
		},
		{
			name:    "root-path from DHCP (option 17), as the seed's dhcpd.conf sends it",
			cmdline: "ip=dhcp root=/dev/nfs",
			env:     []string{"KRG_DHCP_IP=10.11.12.102", "KRG_DHCP_ROOTPATH=10.11.12.1:/NFSROOT/kerrighed", "KRG_DHCP_SIADDR=10.11.12.9"},
			want:    []string{"nfs=10.11.12.1:/NFSROOT/kerrighed opts=", "mount=ro,vers=3,nolock,addr=10.11.12.1"},
		},
		{
			name:    "root-path without a server: next-server, and %s is the address",
			cmdline: "ip=dhcp root=/dev/nfs",
			env:     []string{"KRG_DHCP_IP=192.168.1.101", "KRG_DHCP_ROOTPATH=/srv/nodes/%s", "KRG_DHCP_SIADDR=192.168.1.1", "KRG_DHCP_SERVERID=192.168.1.254"},
			want:    []string{"nfs=192.168.1.1:/srv/nodes/192.168.1.101 opts="},
		},
		{
			name:    "no next-server: the DHCP server itself",
			cmdline: "ip=dhcp nfsroot=/export/root",
			env:     []string{"KRG_DHCP_IP=192.168.1.101", "KRG_DHCP_SIADDR=0.0.0.0", "KRG_DHCP_SERVERID=192.168.1.254"},
			want:    []string{"nfs=192.168.1.254:/export/root opts="},
		},
		{
			name:    "static ip= in the kernel's form",
			cmdline: "ip=10.0.0.5:10.0.0.1:10.0.0.254:255.255.255.128:node5:eth1:off root=/dev/nfs nfsroot=/export/%s",
			want: []string{"ip=static client=10.0.0.5 server=10.0.0.1 gw=10.0.0.254 bits=25 host=node5 dev=eth1",
				"nfs=10.0.0.1:/export/10.0.0.5 opts="},
		},
		{
			name:    "ip= with only a device",
			cmdline: "ip=:::::eth0:dhcp",
			want:    []string{"ip=dhcp client= server= gw= bits=24 host= dev=eth0"},
		},
		{
			name:    "ip=off",
			cmdline: "ip=off",
			want:    []string{"ip=off client="},
		},
		{
			name:    "lock requested, init and debug",
			cmdline: "nfsroot=10.0.0.1:/r,lock init=/bin/bash krgimage.debug",
			want:    []string{"init=/bin/bash debug=1", "mount=ro,vers=3,lock,addr=10.0.0.1"},
		},
		{
			name:    "the image's defaults when the command line is silent",
			cmdline: "nfsroot=10.0.0.1:/r",
			env:     []string{"KRG_DEFAULT_MODE=rw", "KRG_DEFAULT_NFS_VERSION=4", "KRG_DEFAULT_NFS_OPTIONS=timeo=30"},
			want:    []string{"mount=rw,vers=4,timeo=30,addr=10.0.0.1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := busyboxSh(t, resolveScript, append(tt.env, "CMDLINE="+tt.cmdline)...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestInitHelpers(t *testing.T) {
	out := busyboxSh(t, `
krg_bootif_mac 01-52-54-00-AB-cd-EF
for m in 255.255.255.0 255.255.0.0 255.255.255.252 255.0.0.0 16 ""; do printf '%s ' "$(krg_mask_bits "$m")"; done; echo
krg_has_opt "a,nolock,b=1" lock nolock && echo has-nolock
krg_has_opt "a,b=1" lock nolock || echo no-lock
krg_has_opt "vers=4" vers && echo has-vers
`)
	want := "52:54:00:ab:cd:ef\n24 16 30 8 16 24 \nhas-nolock\nno-lock\nhas-vers\n"
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

// A DHCP answer is sourced by /init: whatever a server sends must stay
// data.
func TestDHCPLeaseQuoting(t *testing.T) {
	dir := t.TempDir()
	canary := filepath.Join(dir, "pwned")
	hostile := `x'; touch ` + canary + `; echo '$(touch ` + canary + `)` + "`touch " + canary + "`"
	out := busyboxSh(t, `
echo "KRG_DHCP_HOSTNAME=$(krg_quote "$HOSTILE")" > "$DIR/lease"
. "$DIR/lease"
[ "$KRG_DHCP_HOSTNAME" = "$HOSTILE" ] && echo same
`, "HOSTILE="+hostile, "DIR="+dir)
	if strings.TrimSpace(out) != "same" {
		t.Errorf("the hostile value did not survive quoting: %q", out)
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("a DHCP value was executed")
	}
}

// The udhcpc script turns the variables busybox gives it into an
// interface setup and a lease file /init can read. It runs in a network
// namespace of its own, on a dummy eth0: it reconfigures interfaces.
func TestUDHCPCScript(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox not installed (make deps installs busybox-static)")
	}
	testenv.RequireRoot(t, "a network namespace")
	dir := t.TempDir()
	// An empty script would run clean: the one under test must be read.
	script, err := os.ReadFile("scripts/udhcpc.script")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(script), "/run/krgimage", dir)
	s = strings.ReplaceAll(s, ". /lib/krgimage/functions.sh", ". ./scripts/functions.sh")
	if err := os.WriteFile(filepath.Join(dir, "udhcpc.script"), []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	run := `set -e
ip link add eth0 type veth peer name eth1
` + bb + ` sh "$DIR/udhcpc.script" deconfig
` + bb + ` sh "$DIR/udhcpc.script" bound
ip -4 -o addr show dev eth0
ip route show default
`
	cmd := exec.Command("unshare", "--net", "sh", "-c", run)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DIR=" + dir, "interface=eth0", "ip=192.168.1.101", "subnet=255.255.255.0",
		"router=192.168.1.1", "rootpath=192.168.1.1:/srv/nfsroot/bookworm", "hostname=node1", "siaddr=192.168.1.1", "serverid=192.168.1.1"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v %s", err, out)
	}
	for _, w := range []string{"inet 192.168.1.101/24", "default via 192.168.1.1 dev eth0"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("interface setup lacks %q:\n%s", w, out)
		}
	}
	lease, err := os.ReadFile(filepath.Join(dir, "dhcp.eth0"))
	if err != nil {
		t.Fatalf("the script wrote no lease: %v", err)
	}
	for _, w := range []string{"KRG_DHCP_IP='192.168.1.101'", "KRG_DHCP_MASK='24'", "KRG_DHCP_ROOTPATH='192.168.1.1:/srv/nfsroot/bookworm'", "KRG_DHCP_HOSTNAME='node1'"} {
		if !strings.Contains(string(lease), w) {
			t.Errorf("lease lacks %s:\n%s", w, lease)
		}
	}
}
