// Package layout is a build's output directory: where a build puts the
// image root (OUT/rootfs, or the recipe's outputs.rootfs with a link at
// OUT/rootfs), build.json, the boot server's files (netboot/), the boot
// test's (boot-test/), the logs (logs/), the boot medium and the
// snapshot; where it stages them while it runs; and how the recipe a
// finished build was made from is read again. The build, the commands that
// work on a finished build (netboot, media, boot-test, report) and the
// boot test ask it rather than join names of their own.
package layout
