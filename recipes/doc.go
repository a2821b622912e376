// Package recipes defines krgimage's recipe format: one YAML file that
// describes a whole diskless node image, from the debootstrap of its base
// system through provisioning, kernel, initramfs, the boot server's
// configuration and the build's outputs.
//
// Loading is strict and exhaustive: every unknown key, wrong type and
// invalid value is reported, each with its file, line and column, before
// anything is built. Strings may use ${VAR} and ${VAR:-default}, filled
// from --set and the environment, so one recipe serves several clusters.
package recipes
