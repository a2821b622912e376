// Package initramfs writes the network-boot initramfs of a diskless node:
// a busybox, the network and NFS drivers the kernel needs (closed over
// modules.dep), and an /init that gets an address by DHCP or from ip=,
// mounts the root over NFS as the kernel's nfsroot documentation describes
// it, and switches to the image's init. The archive is cpio newc, written
// natively and byte-for-byte reproducibly: sorted entries, uid and gid 0,
// times clamped to the build time, inode numbers given in order.
package initramfs
