// Package aptsources reads and writes APT source lists in both formats
// APT knows: the one-line sources.list format (the only one lenny's APT
// reads) and the deb822 *.sources format of current releases. krgimage uses
// it to find the host's Debian mirror, so that no mirror host name needs to
// be written into a recipe, to check and key a recipe's source lines, and
// to write the image's own sources. It also holds the rule that names a
// release's security suite (SUITE/updates before bullseye, then
// SUITE-security).
package aptsources
