// Package chroot is the session the provisioning steps, the kernel and
// the initramfs run commands in, inside an image root.
//
// Commands run in a Session: krgimage re-executes itself in a private mount
// namespace, mounts /proc, /sys and a minimal /dev inside the image,
// chroots and runs the command with a clean environment, so a crash never
// leaves a mount on the host. While a session is open no service can start
// (policy-rc.d exits 101) and the host's resolv.conf stands in for the
// image's, which Close puts back. File writes go through os.Root, so no
// path, whatever symlinks the image holds, can land outside the root.
//
// What to do in the image is package provision's: this package knows no
// step.
package chroot
