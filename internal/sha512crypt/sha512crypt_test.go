package sha512crypt

import (
	"os/exec"
	"strings"
	"testing"
)

// The vectors of Drepper's specification (default rounds).
func TestSpecVectors(t *testing.T) {
	for _, tt := range []struct{ salt, password, want string }{
		{"saltstring", "Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	} {
		if got := Hash(tt.password, tt.salt); got != tt.want {
			t.Errorf("Hash(%q, %q) = %s, want %s", tt.password, tt.salt, got, tt.want)
		}
	}
}

// The host's glibc crypt(3), through perl (perl-base is essential in
// Debian), agrees for passwords and salts of every length around the
// scheme's block boundaries.
func TestAgreesWithGlibc(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Fatal("perl not found: Debian's perl-base is essential")
	}
	var args []string
	var want []string
	for _, n := range []int{0, 1, 15, 16, 63, 64, 65, 127, 200} {
		pw := strings.Repeat("p", n)
		salt := Random(1 + n%16)
		args = append(args, pw, salt)
		want = append(want, Hash(pw, salt))
	}
	script := `while (@ARGV) { my ($p, $s) = splice(@ARGV, 0, 2); print crypt($p, "\$6\$$s\$"), "\n" }`
	out, err := exec.Command(perl, append([]string{"-e", script}, args...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("password of %d bytes: glibc says %q, we say %q", len(args[2*i]), got[min(i, len(got)-1)], want[i])
		}
	}
}

func TestRandomAlphabet(t *testing.T) {
	s := Random(4096)
	if len(s) != 4096 || strings.Trim(s, alphabet) != "" {
		t.Errorf("Random: %q", s[:32])
	}
	if a, b := Random(32), Random(32); a == b {
		t.Error("two random strings are equal")
	}
}
