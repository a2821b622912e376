// Package kernel puts the nodes' kernel into an image: a Debian kernel
// package, or a kernel built from source and installed with DESTDIR, the
// way the Kerrighed howto installs Kerrighed 3.0.0 ("make install
// DESTDIR=/NFSROOT/kerrighed/"). Afterwards it finds the installed version,
// writes modules.dep with depmod -b and checks the result is bootable.
package kernel
