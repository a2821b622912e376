// Package aptsources reads and writes APT source lists in both formats
// APT knows: the one-line sources.list format (the only one lenny's APT
// reads) and the deb822 *.sources format of current releases. krgimage uses
// it to find the host's Debian mirror, so that no mirror host name needs to
// be written into a recipe, and to write the image's own sources.
package aptsources
