// Package media writes boot media for nodes that cannot boot from the
// network, as the seed suggests with Etherboot/gPXE: an ISO 9660 image
// (Rock Ridge and Joliet, made with go-diskfs) that a node boots from CD
// or, through a hybrid MBR, from a USB stick.
//
// The isolinux kind carries isolinux, the image's kernel and krgimage's
// initramfs, with the append line the PXE nodes boot with and a menu
// entry per node that boots differently; the node then mounts the same
// NFS root as its PXE neighbours. The ipxe kind carries only iPXE and a
// script that asks DHCP and chains to the boot server's pxelinux, so every
// node takes its configuration from the server. An optional EFI system
// partition (FAT32, with syslinux.efi and the same entries) is the second
// El Torito entry.
//
// The bytes depend only on the inputs and the build time: every date in
// the image is the build time, owners are root, and the hybrid MBR's disk
// signature is derived from the image.
package media
