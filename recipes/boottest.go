package recipes

import "time"

// SetDefaults gives a boot_test: section what it leaves out: user-mode
// networking, one node with an e1000 card and 1024 MiB, ten minutes to
// reach "login:". A recipe without the section boots with the same
// (DefaultBootTest), so both come from here.
func (b *BootTest) SetDefaults() {
	b.Network, b.NIC, b.Memory, b.Success, b.Nodes = "user", "e1000", 1024, "login:", 1
	b.Timeout.Duration = 10 * time.Minute
}

// DefaultBootTest is the boot test of a recipe without a boot_test:
// section: the section's defaults, with no login and no checks. Each
// call returns a new value the caller may change.
func DefaultBootTest() *BootTest {
	b := &BootTest{}
	b.SetDefaults()
	return b
}
