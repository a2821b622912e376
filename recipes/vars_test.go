package recipes

import "testing"

// A variable that fills a secret field stays out of Recipe.Vars, which
// build.json records, whatever its name.
func TestVarsLeaveSecretsOut(t *testing.T) {
	src := []byte(`name: s
suite: bookworm
provision:
  - root-password: {hash: "${ROOTPW}"}
  - write: {path: /etc/motd, content: hi}
nfsroot: {server: 10.0.0.1, path: "${EXPORT}"}
`)
	r, err := Parse(src, "s.yaml", Options{Vars: map[string]string{"ROOTPW": "$6$salt$hash", "EXPORT": "/srv/n"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Vars["ROOTPW"]; ok || r.Vars["EXPORT"] != "/srv/n" {
		t.Errorf("Vars = %v; want EXPORT and not ROOTPW", r.Vars)
	}
}
