package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/krgimage/krgimage/internal/dpkg"
	"github.com/krgimage/krgimage/internal/layout"
)

// installedPackages reads the packages dpkg has installed in the image
// root, sorted by name and architecture.
func installedPackages(root string) ([]Package, error) {
	f, err := os.Open(filepath.Join(root, dpkg.StatusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	installed, err := dpkg.ParseStatus(f)
	if err != nil {
		return nil, err
	}
	out := make([]Package, len(installed))
	for i, p := range installed {
		out[i] = Package{Name: p.Name, Version: p.Version, Architecture: p.Architecture, InstalledKiB: p.InstalledKiB}
	}
	slices.SortFunc(out, func(a, b Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Architecture, b.Architecture)
	})
	return out, nil
}

// outputFiles lists the output directory's files with their digests: all
// of them but the image root (described by the snapshot) and the logs
// (which differ on every build), plus the root's /boot, which the nodes
// boot. known holds digests already computed, by path.
func outputFiles(ctx context.Context, out, root string, known map[string]string) ([]OutputFile, error) {
	var files []OutputFile
	add := func(p, rel string) error {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		sum, ok := known[rel]
		if !ok {
			if sum, err = fileDigest(ctx, p); err != nil {
				return err
			}
		}
		files = append(files, OutputFile{Path: rel, Bytes: fi.Size(), SHA256: sum})
		return nil
	}
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(out, p)
		if err != nil {
			return err
		}
		if d.IsDir() && (rel == layout.RootfsName || rel == layout.LogsName) {
			return fs.SkipDir
		}
		if rel == layout.BuildJSONName || rel == layout.RootfsName {
			return nil
		}
		return add(p, filepath.ToSlash(rel))
	})
	if err != nil {
		return nil, err
	}
	des, err := os.ReadDir(filepath.Join(root, "boot"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, de := range des {
		if err := add(filepath.Join(root, "boot", de.Name()), layout.RootfsName+"/boot/"+de.Name()); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(files, func(a, b OutputFile) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

func fileDigest(ctx context.Context, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
