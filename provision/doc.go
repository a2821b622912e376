// Package provision holds the provisioning steps: what the seed does by
// hand inside "chroot /NFSROOT/kerrighed" (accounts, APT sources and
// packages, /etc/hosts, fstab, mtab, boot-time naming and SSH host keys
// for nodes sharing one root) and the recipe's own scripts and files.
//
// Each step type is one file, as debos keeps each action in one: the step
// says what it will do (Describe, the plan's lines), checks what it can
// before anything runs (Check), does the work in a chroot session (Apply),
// and declares what the stage cache must key it by beyond its
// configuration (Reads) and whether it can change how a packaged kernel
// installs (ChangesKernel). Its recipe schema, defaults and the checks
// that carry a line and column are the type of the same name in package
// recipes. The registry in step.go lists every type; a test holds it to
// the recipes' registry and to declaring all of the above.
//
// Steps run in a chroot.Session, which keeps the namespaces, mounts,
// policy-rc.d and confined file access to itself.
package provision
