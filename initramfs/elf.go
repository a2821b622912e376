package initramfs

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// resolveIn follows a path inside an image root as the image's own
// programs would see it: absolute symlinks point into the image, not the
// host, and nothing resolves outside root.
func resolveIn(root, p string) (string, error) {
	const maxLinks = 40
	links := 0
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur := "/"
	for len(parts) > 0 {
		c := parts[0]
		parts = parts[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		parts = append(strings.Split(strings.Trim(target, "/"), "/"), parts...)
	}
	return cur, nil
}

// libDirs are where the dynamic loader looks, on Debian (multiarch first).
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/lib/i386-linux-gnu", "/usr/lib/i386-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// Libraries returns what a binary inside root needs to run: its program
// interpreter and every shared library, recursively, as paths inside the
// image (the names the loader asks for) mapped to the files that hold
// them. A static binary needs nothing.
func Libraries(root, bin string) (map[string]string, error) {
	out := map[string]string{}
	var walk func(p string) error
	walk = func(p string) error {
		real, err := resolveIn(root, p)
		if err != nil {
			return err
		}
		f, err := elf.Open(filepath.Join(root, real))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		defer f.Close()
		for _, prog := range f.Progs {
			if prog.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err != nil {
				return err
			}
			interp := strings.TrimRight(string(b), "\x00")
			if _, ok := out[interp]; !ok {
				r, err := resolveIn(root, interp)
				if err != nil {
					return fmt.Errorf("%s: interpreter %s: %w", p, interp, err)
				}
				out[interp] = r
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
			return err
		}
		for _, lib := range needed {
			found := ""
			for _, d := range libDirs {
				cand := path.Join(d, lib)
				if _, ok := out[cand]; ok {
					found = cand
					break
				}
				if r, err := resolveIn(root, cand); err == nil {
					if fi, err := os.Stat(filepath.Join(root, r)); err == nil && fi.Mode().IsRegular() {
						out[cand] = r
						if err := walk(cand); err != nil {
							return err
						}
						found = cand
						break
					}
				}
			}
			if found == "" {
				return fmt.Errorf("%s needs %s, which is not in the image", p, lib)
			}
		}
		return nil
	}
	if err := walk(bin); err != nil {
		return nil, err
	}
	return out, nil
}
