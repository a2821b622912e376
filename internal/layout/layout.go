package layout

import (
	"path/filepath"

	"github.com/krgimage/krgimage/recipes"
)

// The names in an output directory.
const (
	// RootfsName is the image root, or the link to it when the recipe's
	// outputs.rootfs puts it elsewhere.
	RootfsName = "rootfs"
	// BuildJSONName is the build report.
	BuildJSONName = "build.json"
	// NetbootName holds the boot server's files.
	NetbootName = "netboot"
	// BootTestName holds the boot test's console logs and result.
	BootTestName = "boot-test"
	// LogsName holds the logs of long steps (a kernel build).
	LogsName = "logs"
)

// Layout is where a build of a recipe puts its outputs.
type Layout struct {
	out, root string
	external  bool
	recipe    *recipes.Recipe
}

// New is the layout of r's build in the output directory out. The image
// root is out/rootfs, unless the recipe's outputs.rootfs places it
// elsewhere. A nil r is a build whose recipe is not known: its root is
// found through out/rootfs.
func New(out string, r *recipes.Recipe) Layout {
	l := Layout{out: out, root: filepath.Join(out, RootfsName), recipe: r}
	if r != nil && r.Outputs.Rootfs != "" {
		l.root, l.external = filepath.Clean(r.Outputs.Rootfs), true
	}
	return l
}

// At is the same build's layout with the output directory at out and the
// image root at root: the staging directories a build writes into, or
// the image a command was pointed at.
func (l Layout) At(out, root string) Layout {
	l.out, l.root = out, root
	return l
}

// Abs is the layout with an absolute output directory.
func (l Layout) Abs() (Layout, error) {
	out, err := filepath.Abs(l.out)
	if err != nil {
		return l, err
	}
	if !l.external {
		return l.At(out, filepath.Join(out, RootfsName)), nil
	}
	return l.At(out, l.root), nil
}

// Recipe is the recipe the layout was made for (nil if unknown).
func (l Layout) Recipe() *recipes.Recipe { return l.recipe }

// Out is the output directory.
func (l Layout) Out() string { return l.out }

// Rootfs is the image root.
func (l Layout) Rootfs() string { return l.root }

// External reports whether the image root is outside the output
// directory (outputs.rootfs).
func (l Layout) External() bool { return l.external }

// RootfsLink is OUT/rootfs: the image root, or the link to it when it is
// external.
func (l Layout) RootfsLink() string { return filepath.Join(l.out, RootfsName) }

// BuildJSON is the build report.
func (l Layout) BuildJSON() string { return filepath.Join(l.out, BuildJSONName) }

// Netboot is the directory of the boot server's files.
func (l Layout) Netboot() string { return filepath.Join(l.out, NetbootName) }

// BootTest is the boot test's directory.
func (l Layout) BootTest() string { return filepath.Join(l.out, BootTestName) }

// Logs is the directory of the steps' logs.
func (l Layout) Logs() string { return filepath.Join(l.out, LogsName) }

// Media is the boot medium's path: the recipe's netboot.media.output, or
// the name krgimage media gives a recipe without one (see
// recipes.Recipe.Medium). Empty when the recipe has no netboot section.
func (l Layout) Media() string {
	if l.recipe == nil || l.recipe.Netboot == nil {
		return ""
	}
	return filepath.Join(l.out, l.recipe.Medium().Output)
}

// Snapshot is the snapshot's path, empty when the recipe writes none.
func (l Layout) Snapshot() string {
	if l.recipe == nil || l.recipe.Outputs.Snapshot == nil {
		return ""
	}
	return filepath.Join(l.out, l.recipe.Outputs.Snapshot.Path)
}

// Staging is where a build of l writes while it runs: .OUT.partial beside
// the output directory and, for an external root, .ROOT.partial beside
// it, so that the finished build takes its names by renames within their
// filesystems.
func (l Layout) Staging() Layout {
	out, _ := siblings(l.out)
	root := filepath.Join(out, RootfsName)
	if l.external {
		root, _ = siblings(l.root)
	}
	return l.At(out, root)
}

// Locks are the lock files a build of l holds beside its output directory
// and, when external, beside its image root ("" when not).
func (l Layout) Locks() (out, root string) {
	_, out = siblings(l.out)
	if l.external {
		_, root = siblings(l.root)
	}
	return out, root
}

func siblings(path string) (stage, lock string) {
	dir, base := filepath.Split(filepath.Clean(path))
	return filepath.Join(dir, "."+base+".partial"), filepath.Join(dir, "."+base+".lock")
}
