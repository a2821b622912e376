package recipes

import "testing"

func TestRedactor(t *testing.T) {
	src := []byte(`name: s
suite: bookworm
public_variables: [SITE, ROOTPW]
description: "${SITE} ${TOKEN} ${LONG} ${MODE} ${QUOTED} ${EMPTY:-}"
provision:
  - root-password: {hash: "${ROOTPW}"}
`)
	vars := map[string]string{
		"SITE": "visible-site", "TOKEN": "s3cr3t", "LONG": "s3cr3t-and-more",
		"MODE": "rw", "QUOTED": `a"b\c`, "EMPTY": "", "ROOTPW": "$6$salt$hash",
	}
	r, err := Parse(src, "s.yaml", Options{Vars: vars, LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	redact := r.Redactor()
	tests := []struct{ name, in, want string }{
		{"withheld", "token s3cr3t here", "token ${TOKEN} here"},
		{"public", "site visible-site", "site visible-site"},
		{"longest first", "s3cr3t-and-more", "${LONG}"},
		{"too short", "mode rw", "mode rw"},
		{"quoted", `"a\"b\\c" a"b\c`, `"${QUOTED}" ${QUOTED}`},
		{"secret field, public or not", "hash $6$salt$hash", "hash ${ROOTPW}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact(tt.in); got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	for name, want := range map[string]bool{"TOKEN": true, "ROOTPW": true, "SITE": false, "MODE": false, "EMPTY": false, "UNSET": false} {
		if got := r.Masked(name); got != want {
			t.Errorf("Masked(%s) = %v, want %v", name, got, want)
		}
	}
}
