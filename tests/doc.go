// Package tests holds krgimage's end-to-end tests: they build the krgimage
// binary, run it as a user would against the host's Debian mirror, and
// check the images it produces. They need root (debootstrap, chroot,
// mounts), as CI provides.
package tests
