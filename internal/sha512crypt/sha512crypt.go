// Package sha512crypt computes crypt(3) "$6$" password hashes (Ulrich
// Drepper's SHA-crypt, 5000 rounds), the scheme every glibc since 2.7
// accepts in /etc/shadow: lenny's as well as today's libxcrypt.
package sha512crypt

import (
	"crypto/rand"
	"crypto/sha512"
	"strings"
)

const alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// rounds is the scheme's default, written without a rounds= field.
const rounds = 5000

// Hash returns the "$6$SALT$..." hash of password. salt is cut to the 16
// characters the scheme reads.
func Hash(password, salt string) string {
	if len(salt) > 16 {
		salt = salt[:16]
	}
	p, s := []byte(password), []byte(salt)
	a := initial(p, s)
	pseq := sequence(repeat(p, len(p)), len(p))
	sseq := sequence(repeat(s, 16+int(a[0])), len(s))
	c := a
	for i := range rounds {
		h := sha512.New()
		if i%2 == 1 {
			h.Write(pseq)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sseq)
		}
		if i%7 != 0 {
			h.Write(pseq)
		}
		if i%2 == 1 {
			h.Write(c)
		} else {
			h.Write(pseq)
		}
		c = h.Sum(nil)
	}
	return "$6$" + salt + "$" + encode(c)
}

// initial is the digest the rounds start from.
func initial(p, s []byte) []byte {
	alt := sha512.Sum512(append(append(append([]byte(nil), p...), s...), p...))
	h := sha512.New()
	h.Write(p)
	h.Write(s)
	h.Write(sequence(alt[:], len(p)))
	for n := len(p); n > 0; n >>= 1 {
		if n&1 == 1 {
			h.Write(alt[:])
		} else {
			h.Write(p)
		}
	}
	return h.Sum(nil)
}

// repeat is the digest of b written n times.
func repeat(b []byte, n int) []byte {
	h := sha512.New()
	for range n {
		h.Write(b)
	}
	return h.Sum(nil)
}

// sequence is digest repeated, then cut, to n bytes.
func sequence(digest []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, digest[:min(len(digest), n-len(out))]...)
	}
	return out
}

// order is the scheme's permutation of the final digest into 4-character
// groups of 3 bytes; the last byte is alone.
var order = [21][3]int{
	{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48},
	{28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13},
	{56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41},
}

func encode(c []byte) string {
	var b strings.Builder
	put := func(w uint32, n int) {
		for range n {
			b.WriteByte(alphabet[w&0x3f])
			w >>= 6
		}
	}
	for _, o := range order {
		put(uint32(c[o[0]])<<16|uint32(c[o[1]])<<8|uint32(c[o[2]]), 4)
	}
	put(uint32(c[63]), 2)
	return b.String()
}

// Salt returns 16 random characters of the scheme's alphabet.
func Salt() string {
	return Random(16)
}

// Random returns n random characters of the crypt alphabet, which no
// shadow field, shell or console treats specially.
func Random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	for i := range b {
		b[i] = alphabet[b[i]&0x3f]
	}
	return string(b)
}
