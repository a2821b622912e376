package pipeline

import (
	"strings"
	"testing"
)

// TestBootstrapPlanRelaxations: the plan lists every check insecure and
// archived relax, and none a recipe did not ask to relax.
func TestBootstrapPlanRelaxations(t *testing.T) {
	sha1Sig, expiredKeys := "SHA-1 Release signatures are accepted", "expired signing keys are accepted"
	weak, validUntil := "only an MD5 or SHA-1 checksum protects are accepted", "past its Valid-Until is accepted; one the mirror serves as current is refused"
	unsigned := "Release signatures are not checked (insecure: true)"
	tests := []struct {
		name, recipe string
		want, not    []string
	}{
		{"strict", "suite: bookworm\n", nil, []string{sha1Sig, expiredKeys, weak, validUntil, unsigned}},
		{"archived native", "suite: lenny\narchived: true\n", []string{sha1Sig, expiredKeys, weak, validUntil}, []string{unsigned}},
		{"insecure native", "suite: bookworm\ninsecure: true\n", []string{unsigned, weak}, []string{sha1Sig, expiredKeys, validUntil}},
		{"archived debootstrap", "suite: lenny\narchived: true\nbootstrap: {method: debootstrap}\n", []string{validUntil}, []string{sha1Sig, expiredKeys, weak}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := bootstrapEnv(loadTestRecipe(t, t.TempDir(), tt.recipe), "http://m/debian")
			got := strings.Join((&bootstrapStep{}).Describe(env), "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("plan lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("plan says %q:\n%s", n, got)
				}
			}
		})
	}
}

func TestBootstrapPlanRedactsMirror(t *testing.T) {
	for _, recipe := range []string{"suite: bookworm\n", "suite: bookworm\nbootstrap: {method: debootstrap}\n"} {
		env := bootstrapEnv(loadTestRecipe(t, t.TempDir(), recipe), "http://user:s3cret@m/debian")
		got := strings.Join((&bootstrapStep{}).Describe(env), "\n")
		if strings.Contains(got, "s3cret") || !strings.Contains(got, "http://xxxxx@m/debian") {
			t.Errorf("plan shows the mirror's credentials, or no mirror:\n%s", got)
		}
	}
}
