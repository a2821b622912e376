// Package netboot generates the boot server of the seed from a recipe's
// node inventory: dhcpd.conf in the seed's four parts (dhcp3-server for
// lenny, isc-dhcp-server later), /etc/default/tftpd-hpa, the NFS exports,
// and the TFTP tree: pxelinux.0 (and ldlinux.c32), the image's kernel and
// initramfs, pxelinux.cfg/default and per-node files named by address in
// hexadecimal. It can show what would change on a server and install it.
package netboot
