// Package boottest proves a built image boots: it starts an NFS server
// exporting the image root at the recipe's NFS path, boots inventory nodes
// in QEMU from the build's TFTP tree over PXE, follows each console through
// the boot's phases (pxelinux, kernel, initramfs, network, NFS root, init,
// login), optionally logs in to run the recipe's checks, and stops every
// process it started, whatever happens.
//
// Everything runs in a private network namespace. In user mode QEMU's own
// network answers DHCP and TFTP, posing as the recipe's server address; in
// netns mode the seed's real servers do: ISC dhcpd with the generated
// dhcpd.conf and tftpd-hpa on a bridge holding the server address, guests
// on tap devices with the inventory's MAC addresses.
package boottest
