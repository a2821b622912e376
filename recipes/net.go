package recipes

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Addr is an IPv4 address. PXE, pxelinux's hex file names and the seed's
// dhcpd.conf are all IPv4.
type Addr struct{ netip.Addr }

// UnmarshalText parses a dotted-quad address.
func (a *Addr) UnmarshalText(b []byte) error {
	v, err := netip.ParseAddr(string(b))
	if err != nil || !v.Is4() {
		return errorf("an IPv4 address such as 10.11.12.1")
	}
	a.Addr = v
	return nil
}

// MarshalText renders the address, or nothing when unset.
func (a Addr) MarshalText() ([]byte, error) {
	if !a.IsValid() {
		return nil, nil
	}
	return []byte(a.String()), nil
}

// Set reports whether an address was given.
func (a Addr) Set() bool { return a.IsValid() }

// Prefix is an IPv4 network in CIDR form.
type Prefix struct{ netip.Prefix }

// UnmarshalText parses a.b.c.d/n and insists on the network address, since
// 10.11.12.5/24 is almost always a typo for a host address.
func (p *Prefix) UnmarshalText(b []byte) error {
	v, err := netip.ParsePrefix(string(b))
	if err != nil || !v.Addr().Is4() {
		return errorf("an IPv4 network in CIDR form such as 10.11.12.0/24")
	}
	if v.Masked() != v {
		return errorf(fmt.Sprintf("a network address: did you mean %s?", v.Masked()))
	}
	p.Prefix = v
	return nil
}

// MarshalText renders the prefix.
func (p Prefix) MarshalText() ([]byte, error) {
	if !p.IsValid() {
		return nil, nil
	}
	return []byte(p.String()), nil
}

// Netmask returns the dotted-quad netmask.
func (p Prefix) Netmask() netip.Addr {
	m := net.CIDRMask(p.Bits(), 32)
	a, _ := netip.AddrFromSlice(m)
	return a
}

// Broadcast returns the subnet's broadcast address.
func (p Prefix) Broadcast() netip.Addr {
	b := p.Addr().As4()
	m := net.CIDRMask(p.Bits(), 32)
	for i := range b {
		b[i] |= ^m[i]
	}
	return netip.AddrFrom4(b)
}

// MAC is an Ethernet hardware address.
type MAC struct{ net.HardwareAddr }

// UnmarshalText parses xx:xx:xx:xx:xx:xx (also accepting dashes).
func (m *MAC) UnmarshalText(b []byte) error {
	s := strings.ReplaceAll(string(b), "-", ":")
	v, err := net.ParseMAC(s)
	if err != nil || len(v) != 6 {
		return errorf("an Ethernet MAC address such as 52:54:00:12:34:56")
	}
	m.HardwareAddr = v
	return nil
}

// MarshalText renders the address in lower case with colons.
func (m MAC) MarshalText() ([]byte, error) {
	if len(m.HardwareAddr) == 0 {
		return nil, nil
	}
	return []byte(m.String()), nil
}

// Set reports whether a MAC address was given.
func (m MAC) Set() bool { return len(m.HardwareAddr) > 0 }

// addAddr returns a + n, and false when it overflows the IPv4 space.
func addAddr(a netip.Addr, n int) (netip.Addr, bool) {
	if !a.Is4() || n < 0 {
		return netip.Addr{}, false
	}
	b := a.As4()
	v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	v += uint64(n)
	if v > 0xffffffff {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// addMAC returns m + n on the low three bytes (the NIC-specific part).
func addMAC(m net.HardwareAddr, n int) (net.HardwareAddr, bool) {
	if len(m) != 6 || n < 0 {
		return nil, false
	}
	v := uint32(m[3])<<16 | uint32(m[4])<<8 | uint32(m[5])
	v += uint32(n)
	if v > 0xffffff {
		return nil, false
	}
	out := make(net.HardwareAddr, 6)
	copy(out, m[:3])
	out[3], out[4], out[5] = byte(v>>16), byte(v>>8), byte(v)
	return out, true
}

// IsZero lets YAML output omit unset addresses.
func (a Addr) IsZero() bool { return !a.IsValid() }

// IsZero lets YAML output omit unset networks.
func (p Prefix) IsZero() bool { return !p.IsValid() }

// IsZero lets YAML output omit unset MAC addresses.
func (m MAC) IsZero() bool { return len(m.HardwareAddr) == 0 }
