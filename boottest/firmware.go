package boottest

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/krgimage/krgimage/internal/qemu"
	"github.com/krgimage/krgimage/netboot"
)

// The firmware a node can start with.
const (
	FirmwareBIOS       = "bios"
	FirmwareUEFI       = "uefi"
	FirmwareSecureBoot = "uefi-secureboot"
)

// Debian's ovmf: the UEFI firmware for QEMU, and its Secure Boot build
// with a variable store holding Microsoft's keys, which sign shim.
const (
	ovmfPath       = "/usr/share/ovmf/OVMF.fd"
	ovmfSecureCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	ovmfSecureVars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
)

// uefi says whether the nodes start with UEFI firmware.
func (o Options) uefi() bool { return o.Firmware == FirmwareUEFI || o.Firmware == FirmwareSecureBoot }

// checkFirmware refuses an unknown firmware, one not installed, and a
// network boot with UEFI from a tree without its loaders.
func (p *plan) checkFirmware() error {
	var files []string
	switch p.o.Firmware {
	case "", FirmwareBIOS:
		return nil
	case FirmwareUEFI:
		files = []string{ovmfPath}
	case FirmwareSecureBoot:
		files = []string{ovmfSecureCode, ovmfSecureVars}
	default:
		return fmt.Errorf("%w: unknown firmware %q: bios, uefi or uefi-secureboot", ErrServerChoice, p.o.Firmware)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("firmware: %w (UEFI needs Debian's ovmf package)", err)
		}
	}
	if p.o.Media != "" {
		return nil
	}
	loader := netboot.UEFIBootFile
	if p.o.httpBoot() {
		loader = netboot.HTTPBootFile
	}
	if _, err := os.Stat(filepath.Join(p.tftp, loader)); err != nil {
		return fmt.Errorf("%w: the TFTP tree has no UEFI loader (%s): the recipe needs netboot.uefi", ErrNotBuilt, loader)
	}
	return nil
}

// firmware sets the machine's firmware; a Secure Boot machine gets its
// own copy of the variable store in work, as a real node has its own
// flash.
func (o Options) firmware(m *qemu.Machine, work, node string) error {
	switch o.Firmware {
	case FirmwareUEFI:
		m.Firmware = ovmfPath
	case FirmwareSecureBoot:
		m.Firmware, m.Vars = ovmfSecureCode, filepath.Join(work, "ovmf-vars-"+node+".fd")
		vars, err := os.ReadFile(ovmfSecureVars)
		if err == nil {
			err = os.WriteFile(m.Vars, vars, 0o600)
		}
		if err != nil {
			return fmt.Errorf("the node's UEFI variables: %w", err)
		}
	}
	if o.uefi() {
		// OVMF has a driver of its own for virtio-net only, and QEMU's
		// ROMs for the other cards are unsigned.
		m.NIC = "virtio"
	}
	if o.httpBoot() {
		// OVMF tries PXE over IPv4, then IPv6, before HTTP boot: without
		// them it boots by HTTP, as a node set to boot that way does.
		m.Extra = append(m.Extra, "-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no",
			"-fw_cfg", "name=opt/org.tianocore/IPv6Support,string=no")
	}
	return nil
}

// httpBoot says whether UEFI nodes boot by UEFI HTTP boot: with UEFI
// firmware, over the network, from a tree served over HTTP.
func (o Options) httpBoot() bool {
	return o.uefi() && o.Media == "" && o.Recipe.Netboot.HTTP != nil
}
