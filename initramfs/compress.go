package initramfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// Compressions krgimage writes.
var Compressions = []string{"gzip", "xz", "zstd", "lzma", "none"}

// ErrCompression: the kernel cannot unpack the chosen compression.
var ErrCompression = errors.New("compression not supported by the kernel")

// compressor wraps w in the chosen compression. Every one is deterministic:
// no file names or times in headers, single-threaded where threads would
// change the bytes.
func compressor(w io.Writer, algo string) (io.WriteCloser, error) {
	switch algo {
	case "gzip", "":
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case "xz":
		// The kernel's XZ decoder accepts CRC32 or no check, not CRC64.
		return xz.WriterConfig{CheckSum: xz.CRC32}.NewWriter(w)
	case "lzma":
		return lzma.WriterConfig{EOSMarker: true}.NewWriter(w)
	case "zstd":
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<20))
	case "none":
		return nopCloser{w}, nil
	}
	return nil, fmt.Errorf("unknown compression %q (allowed: %s)", algo, strings.Join(Compressions, ", "))
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// configKeys maps a compression to the kernel option that unpacks it.
var configKeys = map[string]string{"gzip": "CONFIG_RD_GZIP", "xz": "CONFIG_RD_XZ", "zstd": "CONFIG_RD_ZSTD", "lzma": "CONFIG_RD_LZMA"}

// since is the kernel version each decompressor arrived in, for kernels
// without a config file (Kerrighed's 2.6.30 knows gzip and lzma only).
var since = map[string]int{"gzip": 0, "lzma": vnum(2, 6, 30), "xz": vnum(2, 6, 38), "zstd": vnum(5, 9, 0)}

func vnum(major, minor, patch int) int { return major*1_000_000 + minor*1_000 + patch }

// Supported returns the compressions a kernel can unpack: from its
// configuration when there is one, from its version otherwise.
func Supported(config []byte, version string) []string {
	out := []string{"none"}
	if config != nil {
		set := map[string]bool{}
		sc := bufio.NewScanner(bytes.NewReader(config))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok && v == "y" {
				set[k] = true
			}
		}
		for algo, key := range configKeys {
			if set[key] {
				out = append(out, algo)
			}
		}
	} else {
		v := vnum(parseVersion(version))
		for algo, first := range since {
			if v >= first {
				out = append(out, algo)
			}
		}
	}
	sort.Strings(out)
	return out
}

func parseVersion(v string) (major, minor, patch int) {
	f := strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '-' || r == '+' || r == '_' })
	nums := []*int{&major, &minor, &patch}
	for i := 0; i < len(f) && i < 3; i++ {
		n, err := strconv.Atoi(f[i])
		if err != nil {
			break
		}
		*nums[i] = n
	}
	return
}

// CheckCompression refuses a compression the kernel in root cannot unpack,
// reading /boot/config-VERSION when the image has it.
func CheckCompression(root, version, algo string) error {
	if algo == "" {
		algo = "gzip"
	}
	config, err := os.ReadFile(root + "/boot/config-" + version)
	if err != nil {
		config = nil
	}
	supported := Supported(config, version)
	for _, s := range supported {
		if s == algo {
			return nil
		}
	}
	why := "its configuration does not set " + configKeys[algo] + "=y"
	if config == nil {
		why = "it predates " + algo + " initramfs support and has no /boot/config-" + version + " to say otherwise"
	}
	return fmt.Errorf("%w: kernel %s cannot unpack a %s initramfs (%s); it can: %s", ErrCompression, version, algo, why, strings.Join(supported, ", "))
}
