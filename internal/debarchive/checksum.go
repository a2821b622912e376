package debarchive

import (
	"fmt"
	"strings"
)

// hashLen is the length in hex digits of each checksum algorithm.
var hashLen = map[string]int{"md5": 32, "sha1": 40, "sha256": 64}

// HexLen is the length of an algo checksum in hex; ok is false for an
// algorithm krgimage does not know.
func HexLen(algo string) (n int, ok bool) {
	n, ok = hashLen[algo]
	return n, ok
}

// SetChecksum checks that v is an algo checksum in hex, as a Release or a
// Packages index gives it, and stores it in dst in lower case.
func SetChecksum(dst *string, algo string, v []byte) error {
	if len(v) != hashLen[algo] {
		return fmt.Errorf("%s checksum %q has the wrong length", algo, truncate(string(v), 80))
	}
	for _, c := range v {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return fmt.Errorf("%s checksum %q is not hexadecimal", algo, v)
		}
	}
	*dst = strings.ToLower(string(v))
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
