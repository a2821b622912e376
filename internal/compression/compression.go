package compression

import (
	"fmt"
	"strings"
)

// Name names an archive compression.
type Name string

// Compressions.
const (
	Zstd Name = "zstd"
	Gzip Name = "gzip"
	XZ   Name = "xz"
	None Name = "none"
)

// Names lists every compression, in the order messages list them.
var Names = []Name{Zstd, Gzip, XZ, None}

// DefaultLevel is the level each compression uses when none is given.
var DefaultLevel = map[Name]int{Zstd: 3, Gzip: 6, XZ: 6, None: 0}

// Parse checks a compression name.
func Parse(s string) (Name, error) {
	switch c := Name(s); c {
	case Zstd, Gzip, XZ, None:
		return c, nil
	}
	return "", fmt.Errorf("unknown compression %q (allowed: zstd, gzip, xz, none)", s)
}

// ForPath picks a compression from a file name's extension, zstd when it
// names none or one krgimage cannot write.
func ForPath(p string) Name {
	c, _, _ := FromName(p)
	return c
}

// FromName reads the compression a file name's extension names, in any
// case: named is false when it names none (c is then zstd, the default),
// and err says so for a compression krgimage cannot write, such as
// .tar.bz2.
func FromName(p string) (c Name, named bool, err error) {
	p = strings.ToLower(p)
	for _, x := range nameExts {
		if strings.HasSuffix(p, x.ext) {
			if x.c == "" {
				return Zstd, true, fmt.Errorf("%s names %s compression, which krgimage does not write (use .tar.zst, .tar.gz, .tar.xz or .tar)", x.ext, x.unsupported)
			}
			return x.c, true, nil
		}
	}
	return Zstd, false, nil
}

// TarSuffix is what a tar archive compressed with c is named with, after
// ".tar": ".zst", ".gz", ".xz", or nothing for none (and for a name
// Parse would refuse).
func TarSuffix(c Name) string {
	return map[Name]string{Zstd: ".zst", Gzip: ".gz", XZ: ".xz", None: ""}[c]
}

var nameExts = []struct {
	ext         string
	c           Name
	unsupported string
}{
	{".zst", Zstd, ""}, {".zstd", Zstd, ""}, {".tzst", Zstd, ""},
	{".gz", Gzip, ""}, {".tgz", Gzip, ""},
	{".xz", XZ, ""}, {".txz", XZ, ""},
	{".tar", None, ""},
	{".bz2", "", "bzip2"}, {".tbz", "", "bzip2"}, {".tbz2", "", "bzip2"},
	{".lz4", "", "lz4"}, {".lzma", "", "lzma"}, {".tlz", "", "lzma"},
	{".lz", "", "lzip"}, {".lzo", "", "lzop"}, {".z", "", "compress"}, {".taz", "", "compress"},
	{".zip", "", "zip"}, {".7z", "", "7-Zip"},
}
