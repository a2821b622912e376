// Package chroot provisions an image root the way the seed does by hand
// inside "chroot /NFSROOT/kerrighed": accounts, APT sources and packages,
// /etc/hosts, fstab, mtab, boot-time naming and SSH host keys for nodes
// sharing one root, and the recipe's own scripts and files.
//
// Commands run in a Session: krgimage re-executes itself in a private mount
// namespace, mounts /proc, /sys and a minimal /dev inside the image,
// chroots and runs the command with a clean environment, so a crash never
// leaves a mount on the host. While a session is open no service can start
// (policy-rc.d exits 101) and the host's resolv.conf stands in for the
// image's, which Close puts back. File writes go through os.Root, so no
// path, whatever symlinks the image holds, can land outside the root.
package chroot
