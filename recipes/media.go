package recipes

import (
	"errors"
	"fmt"
	"strings"
)

// The rules of boot media live here, for the build's media step (through
// the recipe's netboot.media) and for krgimage media (which may write a
// medium the recipe does not ask for, with flags over its settings).

// DefaultMedia is the medium of a recipe whose netboot section names
// none, and what netboot.media's empty keys default to: an isolinux ISO
// named after the recipe.
func (r *Recipe) DefaultMedia() Media {
	return Media{Kind: "isolinux", Output: r.Name + ".iso"}
}

// Medium is the medium the recipe yields: its netboot.media, else
// DefaultMedia.
func (r *Recipe) Medium() Media {
	if r.Netboot != nil && r.Netboot.Media != nil {
		return *r.Netboot.Media
	}
	return r.DefaultMedia()
}

// Conflict says why m's settings cannot go together (iPXE with UEFI),
// whatever the image: krgimage media calls that a usage error.
func (m Media) Conflict() error {
	if m.UEFI && m.Kind == "ipxe" {
		return errors.New("an ipxe medium cannot boot UEFI nodes: the boot server serves pxelinux.0, a BIOS program; use kind: isolinux")
	}
	return nil
}

// CheckMedia says why the recipe's image cannot boot from m, nil when it
// can; every problem is of kind ErrInvalid.
func (r *Recipe) CheckMedia(m Media) Errors {
	var errs Errors
	for _, p := range r.mediaProblems(m) {
		errs = append(errs, r.Errorf(p.key, p.kind, "%s", p.msg))
	}
	return errs
}

type mediaProblem struct {
	key  string
	kind error
	msg  string
}

func (r *Recipe) mediaProblems(m Media) []mediaProblem {
	var ps []mediaProblem
	if r.Architecture != "amd64" && r.Architecture != "i386" {
		ps = append(ps, mediaProblem{"netboot.media", ErrInvalid, "boot media start x86 nodes (isolinux, iPXE); this image is " + r.Architecture})
	}
	if err := m.Conflict(); err != nil {
		ps = append(ps, mediaProblem{"netboot.media.uefi", ErrInvalid, err.Error()})
	} else if m.UEFI && r.Architecture != "amd64" {
		ps = append(ps, mediaProblem{"netboot.media.uefi", ErrInvalid, "UEFI media are for amd64 nodes; this image is " + r.Architecture})
	}
	if m.Output == "." || m.Output == ".." || strings.ContainsAny(m.Output, "/\\") {
		ps = append(ps, mediaProblem{"netboot.media.output", ErrInvalid, fmt.Sprintf("output %q: a file name in the output directory, such as node.iso", m.Output)})
	}
	return ps
}

// validateMedia checks what the media step could only find out late.
func (r *Recipe) validateMedia(v *Validator) {
	if r.Netboot.Media == nil {
		return
	}
	for _, p := range r.mediaProblems(*r.Netboot.Media) {
		v.Errorf(p.key, p.kind, "%s", p.msg)
	}
}
