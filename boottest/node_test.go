package boottest

import "testing"

func TestWithoutKernelLines(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "node1", "node1"},
		{"message before", "[  103.812345] kvm: already loaded vendor module 'kvm_amd'\nnode1", "node1"},
		{"message after", "node1\r\n[    9.1] random: crng init done\r", "node1\r"},
		{"with level", "<6>[ 12.000000] eth0: link up\n192.168.1.101", "192.168.1.101"},
		{"only messages", "[1.0] a\n[2.0] b", ""},
		{"bracket in output", "[node1]", "[node1]"},
		{"addresses kept", "192.168.1.101 10.0.2.15", "192.168.1.101 10.0.2.15"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := withoutKernelLines(tc.in); got != tc.want {
				t.Errorf("withoutKernelLines(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
