package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// maxStatusSize bounds the dpkg status file read into memory.
const maxStatusSize = 256 << 20

// installedPackages reads the packages dpkg has installed in the image
// root, sorted by name and architecture.
func installedPackages(root string) ([]Package, error) {
	f, err := os.Open(filepath.Join(root, "var/lib/dpkg/status"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStatusSize))
	if err != nil {
		return nil, err
	}
	return parseStatus(b), nil
}

// parseStatus reads the installed packages of a dpkg status file.
func parseStatus(b []byte) []Package {
	var out []Package
	var p Package
	installed := false
	flush := func() {
		if p.Name != "" && installed {
			out = append(out, p)
		}
		p, installed = Package{}, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch name {
		case "Package":
			p.Name = value
		case "Version":
			p.Version = value
		case "Architecture":
			p.Architecture = value
		case "Installed-Size":
			p.InstalledKiB, _ = strconv.ParseInt(value, 10, 64)
		case "Status":
			installed = strings.HasSuffix(value, " installed")
		}
	}
	flush()
	slices.SortFunc(out, func(a, b Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Architecture, b.Architecture)
	})
	return out
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
		if d.IsDir() && (rel == "rootfs" || rel == "logs") {
			return fs.SkipDir
		}
		if rel == ReportFile || rel == "rootfs" {
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
		if err := add(filepath.Join(root, "boot", de.Name()), "rootfs/boot/"+de.Name()); err != nil {
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
