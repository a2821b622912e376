package boottest

import (
	"errors"
	"testing"

	"github.com/krgimage/krgimage/recipes"
)

// The DHCP server a boot test runs is the recipe's or the one chosen, in
// netns only, and choosing one leaves the caller's recipe as it was.
func TestDHCPChoice(t *testing.T) {
	r := &recipes.Recipe{Netboot: &recipes.Netboot{DHCP: recipes.DHCP{Server: "isc"}}}
	got, err := withDHCP(r, Options{Network: "netns", DHCP: "kea"})
	if err != nil || got.Netboot.DHCP.Server != "kea" || r.Netboot.DHCP.Server != "isc" {
		t.Fatalf("withDHCP(kea) = %v, %v; the recipe's server is now %s", got, err, r.Netboot.DHCP.Server)
	}
	if name, pkg := dhcpTool(got); name != "kea-dhcp4" || pkg != "kea-dhcp4-server" {
		t.Errorf("Kea's tool: %s from %s", name, pkg)
	}
	if got, err := withDHCP(r, Options{Network: "user"}); err != nil || got != r {
		t.Errorf("no choice: %v, %v", got, err)
	}
	kea := &recipes.Recipe{Netboot: &recipes.Netboot{DHCP: recipes.DHCP{Server: "kea"}}}
	for _, bad := range []struct {
		r *recipes.Recipe
		o Options
	}{
		{r, Options{Network: "user", DHCP: "dnsmasq"}},
		{r, Options{Network: "netns", DHCP: "udhcpd"}},
		{kea, Options{Network: "netns", DHCP: "isc"}},
	} {
		if _, err := withDHCP(bad.r, bad.o); !errors.Is(err, ErrServerChoice) {
			t.Errorf("withDHCP(%+v) = %v, want ErrServerChoice", bad.o, err)
		}
	}
}
