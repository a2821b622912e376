package netboot

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/krgimage/krgimage/internal/quote"
	"github.com/krgimage/krgimage/recipes"
)

// The Kea configuration is JSON, written with encoding/json: a recipe
// value is a JSON string and never more. Kea reads # comments, which carry
// the header.

type keaFile struct {
	Dhcp4 keaDhcp4 `json:"Dhcp4"`
}

type keaDhcp4 struct {
	Interfaces    keaInterfaces `json:"interfaces-config"`
	LeaseDatabase keaLeases     `json:"lease-database"`
	ValidLifetime int           `json:"valid-lifetime"`
	OptionData    []keaOption   `json:"option-data,omitempty"`
	ClientClasses []keaClass    `json:"client-classes"`
	Subnets       []keaSubnet   `json:"subnet4"`
}

type keaInterfaces struct {
	Interfaces []string `json:"interfaces"`
}

type keaLeases struct {
	Type    string `json:"type"`
	Persist bool   `json:"persist"`
	Name    string `json:"name"`
}

type keaOption struct {
	Name       string `json:"name"`
	Data       string `json:"data"`
	AlwaysSend bool   `json:"always-send,omitempty"`
}

type keaClass struct {
	Name           string      `json:"name"`
	Test           string      `json:"test"`
	NextServer     string      `json:"next-server"`
	ServerHostname string      `json:"server-hostname"`
	BootFileName   string      `json:"boot-file-name"`
	OptionData     []keaOption `json:"option-data,omitempty"`
}

type keaSubnet struct {
	ID           int              `json:"id"`
	Subnet       string           `json:"subnet"`
	Pools        []keaPool        `json:"pools,omitempty"`
	OptionData   []keaOption      `json:"option-data"`
	Reservations []keaReservation `json:"reservations,omitempty"`
}

type keaPool struct {
	Pool string `json:"pool"`
}

type keaReservation struct {
	HWAddress  string      `json:"hw-address"`
	IPAddress  string      `json:"ip-address"`
	Hostname   string      `json:"hostname"`
	OptionData []keaOption `json:"option-data"`
}

// KeaLeaseFile is where Debian's kea-dhcp4-server keeps its leases.
const KeaLeaseFile = "/var/lib/kea/kea-leases4.csv"

// biosTest selects the clients that get pxelinux.0: option 93 (client
// system architecture) 0 is a BIOS PXE client, and one that sends no
// option 93 predates the option and is a BIOS too. A UEFI client gets no
// BIOS loader it could not run.
const biosTest = "not option[93].exists or option[93].hex == 0x0000"

// uefiTest selects x86-64 UEFI clients, which send option 93 as EFI BC
// (7) or EFI x86-64 (9).
const uefiTest = "option[93].hex == 0x0007 or option[93].hex == 0x0009"

// httpBootTest selects x86-64 UEFI HTTP boot clients: architecture 16,
// and the vendor class they send.
var httpBootTest = fmt.Sprintf("option[93].hex == 0x0010 and substring(option[60].hex, 0, %d) == '%s'", len(HTTPBootClass), HTTPBootClass)

func keaConf(r *recipes.Recipe) string { return KeaConfig(r, KeaLeaseFile) }

// KeaConfig is kea-dhcp4.conf with its leases in leaseFile: the boot test
// keeps them in its own directory.
func KeaConfig(r *recipes.Recipe, leaseFile string) string {
	c := r.Cluster
	d := keaDhcp4{
		Interfaces:    keaInterfaces{Interfaces: []string{"*"}},
		LeaseDatabase: keaLeases{Type: "memfile", Persist: true, Name: leaseFile},
		ValidLifetime: 43200,
		OptionData:    siteOptions(r),
		ClientClasses: []keaClass{{Name: "pxe-bios", Test: biosTest, NextServer: c.Server.IP.String(),
			ServerHostname: c.Server.Name, BootFileName: "pxelinux.0"}},
	}
	if r.Netboot.UEFI != nil {
		d.ClientClasses = append(d.ClientClasses, keaClass{Name: "pxe-uefi-x64", Test: uefiTest, NextServer: c.Server.IP.String(),
			ServerHostname: c.Server.Name, BootFileName: UEFIBootFile})
		if r.Netboot.HTTP != nil {
			// The client takes a URL only from an answer that names its
			// class back.
			d.ClientClasses = append(d.ClientClasses, keaClass{Name: "http-uefi-x64", Test: httpBootTest, NextServer: c.Server.IP.String(),
				ServerHostname: c.Server.Name, BootFileName: HTTPBootURL(r),
				OptionData: []keaOption{{Name: "vendor-class-identifier", Data: HTTPBootClass, AlwaysSend: true}}})
		}
	}
	sub := keaSubnet{ID: 1, Subnet: c.Subnet.String()}
	if rg := c.DynamicRange; rg != nil {
		sub.Pools = []keaPool{{Pool: rg.Start.String() + " - " + rg.End.String()}}
	}
	if c.Gateway.IsValid() {
		sub.OptionData = append(sub.OptionData, keaOption{Name: "routers", Data: c.Gateway.String()})
	}
	sub.OptionData = append(sub.OptionData,
		keaOption{Name: "broadcast-address", Data: c.Broadcast.String()},
		keaOption{Name: "root-path", Data: r.NFSRoot.Server.String() + ":" + r.NFSRoot.Path, AlwaysSend: true})
	var header strings.Builder
	fmt.Fprintf(&header, "# kea-dhcp4.conf: written by krgimage for recipe %s (kea-dhcp4-server).\n", quote.Plain(r.Name))
	if c.DynamicRange != nil {
		header.WriteString("# Kea cannot name dynamic clients from their address, as dhcpd's krgnodeXX expression does.\n")
	}
	for _, n := range r.Nodes() {
		if len(n.MAC) == 0 {
			fmt.Fprintf(&header, "# %s (%s) has no MAC address in the inventory: it boots from the pool.\n", quote.Plain(n.Name), n.IP)
			continue
		}
		// Sent whether or not the client asks: the node takes its name
		// from DHCP.
		sub.Reservations = append(sub.Reservations, keaReservation{HWAddress: n.MAC.String(), IPAddress: n.IP.String(),
			Hostname: n.Name, OptionData: []keaOption{{Name: "host-name", Data: n.Name, AlwaysSend: true}}})
	}
	d.Subnets = []keaSubnet{sub}
	b, err := json.MarshalIndent(keaFile{Dhcp4: d}, "", "  ")
	if err != nil {
		panic("netboot: the Kea configuration does not marshal: " + err.Error())
	}
	return header.String() + string(b) + "\n"
}

// siteOptions are the seed's site options: domain, DNS and NTP servers.
func siteOptions(r *recipes.Recipe) []keaOption {
	c := r.Cluster
	var out []keaOption
	if c.Domain != "" {
		out = append(out, keaOption{Name: "domain-name", Data: c.Domain})
	}
	if len(c.DNS) > 0 {
		out = append(out, keaOption{Name: "domain-name-servers", Data: joinAddrs(c.DNS)})
	}
	if len(c.NTP) > 0 {
		out = append(out, keaOption{Name: "ntp-servers", Data: joinAddrs(c.NTP)})
	}
	return out
}
