package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/stagecache"
)

// pinRecipe uses every provisioning step type and every input a step can
// read: files, directories, environment variables, explicit APT sources.
const pinRecipe = `name: pin
suite: bookworm
variant: minbase
cluster:
  domain: c.home
  server: {name: server, ip: 10.0.0.1}
  subnet: 10.0.0.0/24
  nodes: [{name: n1, ip: 10.0.0.11}]
nfsroot: {path: /srv/nfsroot/pin}
provision:
  - root-password: {env: PIN_ROOT_HASH}
  - root-password: {file: root.hash}
  - users:
      - {name: krg, uid: 1000, password_env: PIN_USER_HASH, ssh_keys_file: keys}
      - {name: ops, password_file: ops.hash}
  - locale: {lc_all: C}
  - hosts: {extra: [{ip: 10.0.0.2, names: [storage]}]}
  - mtab
  - fstab: {swap: /dev/hda}
  - rcs
  - nfsbooted
  - ssh: {host_keys: fixed}
  - write: {path: /etc/motd, content: "hi\n"}
  - files: [{src: motd, dst: /etc/issue}, {src: tree, dst: /opt/tree}]
  - apt-sources
  - apt-sources: {sources: ["deb [arch=amd64] http://other.example/debian bookworm main contrib"]}
  - packages: [less]
  - initramfs-tools
  - run: {file: script.sh}
  - run: {script: "echo hi", env: {A: b}}
  - write: {path: /etc/modprobe.d/x.conf, content: "options x y=1\n"}
  - files: [{src: motd, dst: /etc/kernel/postinst.d/}]
  - users: [{name: late}]
kernel: {package: linux-image-amd64}
`

// pinnedKeys are each provisioning stage's own key material (its
// addKey, not chained to the previous stage, whose bootstrap key depends
// on a throwaway signing key) as main computed them before the
// provisioning steps moved to package provision. A change here is a
// change to every user's stage cache: it must be deliberate.
var pinnedKeys = map[string]string{
	"bookworm-nfsroot apt-sources":        "f483423d4b145d34be07fee659badefd16c978740ab2705f7e32083266a2e105",
	"bookworm-nfsroot apt-sources plan":   "ad405cf15fdcc51956526c2b24dc980c49529c27f7afc4f457b3ce803aa03259",
	"bookworm-nfsroot fstab":              "afa584fa498cb1dbb1cbc5a02f6d6bb18900dda0c863912231a7b82045a52168",
	"bookworm-nfsroot fstab plan":         "c5f441958a835f92ce15f1eb7f1a38b19c991f7f690b3350e43b2fdea16c03e8",
	"bookworm-nfsroot hosts":              "e7e7e9a851f65647d02d41399d6829412e8967c48e72c7520de56831ee5b861c",
	"bookworm-nfsroot hosts plan":         "85ce59db089ffd535528414fd7e3d3ba6903766e473a9a0ccb425b21bb8df880",
	"bookworm-nfsroot locale":             "c7015a76c734d2953b8875612c76666c1ab70540860c1dd886810ba7f9a56310",
	"bookworm-nfsroot locale plan":        "dcf76c783fbf13ccfda49e60dc4477562917849220ea3c9af90766cbe809d464",
	"bookworm-nfsroot mtab":               "73a5e8818e4bbacba84830b89890ddfacca2d5cbe088ca44099dbcd322d4c584",
	"bookworm-nfsroot mtab plan":          "1297ea84c399075ae97f7149983279d931f20d5938114dbc1e7617597d7a2cb7",
	"bookworm-nfsroot nfsbooted":          "ae8af9412c8d507fab092321c1972a910fb63e7499c6db31111263fefaeef58a",
	"bookworm-nfsroot nfsbooted plan":     "cf5275d49d1385c3d8203e9ed42de1659f27a294f6cc49f53877c7bb763047e8",
	"bookworm-nfsroot order":              "bootstrap,apt-sources,packages,kernel,root-password,users,locale,hosts,mtab,fstab,rcs,nfsbooted,ssh,initramfs,netboot,snapshot",
	"bookworm-nfsroot packages":           "35ce96e2d8200dec7787d7dc0834a9fa25db5b62ac1574b42754e9a42d84b176",
	"bookworm-nfsroot packages plan":      "674da9694fc56430e52005b87852e972a0f80c5ff4ec843949ebc3d52375f7a1",
	"bookworm-nfsroot rcs":                "09b5b05562d60b3e9b6a7923915ec0f76816a78ea59910d615828300bc0d3fb0",
	"bookworm-nfsroot rcs plan":           "0bc9bc8c66386be2797a69aba69ea1a0ea81b97c49908eff6b36134eed505716",
	"bookworm-nfsroot root-password":      "cce73f1fbf690b686396f9bcbe7e89864299171ea0d55e488f71c31a5565a507",
	"bookworm-nfsroot root-password plan": "6c0904850e4dc8b8c0398cbe56bb2ec5ef2de97b47d5daa57390c00a30885bd3",
	"bookworm-nfsroot ssh":                "0371cad523d0224e81c37e1d87188819f6dd5b41c3b11ba62e51681a8bfb3fe2",
	"bookworm-nfsroot ssh plan":           "aae881554cfb3c231aea542e246941b0a4fe23dafb04dadf1c8616df1ecd3240",
	"bookworm-nfsroot users":              "50981aa9d0792b23bf664b2934f35923ce4aaac905062af8d0c30070d84826b7",
	"bookworm-nfsroot users plan":         "434b7b5c025b59b81c6d767968bc157692323c26f276759e8dc54692a28e8f38",
	"pin apt-sources":                     "7dcb0c6f12814aa01e3a3b7413224276bcda4eb343c77780222d0cb1be624767",
	"pin apt-sources plan":                "ad405cf15fdcc51956526c2b24dc980c49529c27f7afc4f457b3ce803aa03259",
	"pin apt-sources#2":                   "f119f3cc350a0db87608c1701fad7a09e1f3d2e1fde052cf13ac01709c062aca",
	"pin apt-sources#2 plan":              "133b59011a062314782f71ba12a9b15ee8105ce5e5781aab709dcba56364fee9",
	"pin files":                           "0b58cbd700c2c01c5b881be27bab47e820339d9212fd8f05185ef4a5c6b359e3",
	"pin files plan":                      "4f0dd3672da60599a282e7de5a3de7e0ff4a002cb71c38eb69581917162a004d",
	"pin files#2":                         "983c39fbffefcf8bec1dc15e279cbaf7f405dba111a71371999f2c7133475bb9",
	"pin files#2 plan":                    "1cff882884622094c15d7f21ec84b574ad8253b8e671fdec34cf035f9ba09682",
	"pin fstab":                           "2666410d81db1cd3f751881931a6a189c29e66cbdd2ad6622e3e0ef1b340e4d3",
	"pin fstab plan":                      "294ba084e385fdbace72ed0a1329581c872f525aff96af241dcb5fdb0221ed88",
	"pin hosts":                           "eac44aa786252501874680e71b6940218b8bc9e5ee71cc15eb51cc2244bda374",
	"pin hosts plan":                      "a9775626da7e729c6008a0fa809021baaf26f54ca736981f5481da4a9fd1ec1a",
	"pin initramfs-tools":                 "c6cbe98b72ad1d824747d4c84ba82f00354f427b7a37330c6f08d5aaf655b66a",
	"pin initramfs-tools plan":            "9cb0e9cf67a5aceb3c43b735d678d159c0c647390b3e7a3ed10f7cb3f5ed69a1",
	"pin locale":                          "e40ab73c7bfaff80ba26b2ab5ca761e242279fb638e34b7a8e32dcefe660a93e",
	"pin locale plan":                     "dcf76c783fbf13ccfda49e60dc4477562917849220ea3c9af90766cbe809d464",
	"pin mtab":                            "fda8aa6f3a4306ac1d4fef846c70365d8f6dff57b20f7925b371aa460c93f2bf",
	"pin mtab plan":                       "1297ea84c399075ae97f7149983279d931f20d5938114dbc1e7617597d7a2cb7",
	"pin nfsbooted":                       "dbb6e656b390b6a0f90bb7429e8d8d4ef894a6bc5aa4b04eec761a0f9d9c50a3",
	"pin nfsbooted plan":                  "cf5275d49d1385c3d8203e9ed42de1659f27a294f6cc49f53877c7bb763047e8",
	"pin order":                           "bootstrap,root-password,root-password#2,users,locale,hosts,mtab,fstab,rcs,nfsbooted,ssh,write,files,apt-sources,apt-sources#2,packages,initramfs-tools,run,run#2,write#2,files#2,kernel,users#2",
	"pin packages":                        "8d4df0e9cec83b7079e1a45667494fd290636c03302b909c8d81f0b244787750",
	"pin packages plan":                   "f49997f8d6c3ef11c0d941e1c43439c3ea8cf696beaa25905c8543072221b6a8",
	"pin rcs":                             "6d5793504c54a59738dced4b458aae6d333337cc902bce4aaf2dce79b0686556",
	"pin rcs plan":                        "0bc9bc8c66386be2797a69aba69ea1a0ea81b97c49908eff6b36134eed505716",
	"pin root-password":                   "ff2a5e68e4077be37d0ac7d1e7612a4bf280cc2633127ddc924431c553d42c6c",
	"pin root-password plan":              "37a519fd8c6d7b4772e59b95d6535cf4748934871317aab00e6f44ae5c363877",
	"pin root-password#2":                 "29492f242dbc7618c1449c5f6bde9e097f70c4c3122eb4b20d08763e28d0d27e",
	"pin root-password#2 plan":            "fb32405a9f5a2991d9c9fdb5c9e3a7e859a524635e04f433acc2804a26f8751d",
	"pin run":                             "562e83ceb3783ac45e5b1a0285e770eb374e4b505632d9f3a1128280934f9a00",
	"pin run plan":                        "1010810b7a66eb3b96cadc25099ea67982ba957a2e06ce621c79ed258f282e98",
	"pin run#2":                           "25f129e5cba256e894564e31de3ad598b302774d9bee6a58e4d2d678d41b86a5",
	"pin run#2 plan":                      "eb19f8793cd03d485a40de2623c93e5f7d20d23b74a6137e312e8633dcae3390",
	"pin ssh":                             "b509eefffeeb805ab7f21c5ad519a4d98180a119f6e3ced69356ebf3441e8891",
	"pin ssh plan":                        "ca16021aac01c0fc3a0435310dcac8a9ce4af0db7bb88240c20d8a36b9dd7581",
	"pin users":                           "e7720bf51fa341a177244d4a27afeef000395c697da7c01c23c996764984ecdd",
	"pin users plan":                      "c5cbd94f071597a3231f3b0a6034a477643a17ce50cba8764e08eaebc25b083b",
	"pin users#2":                         "8110f95b80135b7a615ec45e1fee5f41a8d50e7f98e3d8ad3d3b74816298d379",
	"pin users#2 plan":                    "df8832b9ee763cbc4081a4f67fdf50f2b3190125b909a8e68c3cce1adf4e99b2",
	"pin write":                           "527063de85e17cfc84b2c523c91f568a8f3966bcc712eb0b5b36a37dfe0bad56",
	"pin write plan":                      "eee1de89c40c08e2d3811a7c2c43c58c3065c616807b191f2eb782b2fa15bfc1",
	"pin write#2":                         "84467dd96f716e43a0e9b556b3bbf399a7f9d0eb53e2e7496b9f34b28c42d6e5",
	"pin write#2 plan":                    "6e89035c6c60c4431bdeea17f5a0a1980fcfcc2d46962502776f3ee86f76efb4",
}

// TestPinnedStageKeys holds the provisioning stages of a shipped recipe
// and of one using every step type and input to the keys they had.
func TestPinnedStageKeys(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"root.hash": "$6$x$y\n", "ops.hash": "$6$o$p\n", "keys": "ssh-ed25519 AAAA k\n",
		"motd": "hello\n", "tree/a": "a\n", "tree/sub/b": "b\n", "script.sh": "echo script\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "pin.yaml"), []byte(pinRecipe), 0o644)
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"PIN_ROOT_HASH": "$6$r$s", "PIN_USER_HASH": "$6$u$v"}[k]
		return v, ok
	}
	pin, err := recipes.Load(filepath.Join(dir, "pin.yaml"), recipes.Options{LookupEnv: lookup})
	if err != nil {
		t.Fatal(err)
	}
	bookworm, err := recipes.LoadShipped("bookworm-nfsroot", recipes.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range []*recipes.Recipe{pin, bookworm} {
		env := &Env{Recipe: r, Mirror: Mirror{URL: "http://mirror.example/debian", Security: "http://security.example/debian-security"},
			Arch: r.Architecture, Log: logging.Discard(), LookupEnv: lookup, State: &State{}}
		rel := pinnedReleases(env, r)
		var order []string
		for _, s := range Steps(r) {
			order = append(order, s.Name())
			p, ok := s.(*provisionStep)
			if !ok {
				continue
			}
			k := stagecache.NewKey("pin")
			if err := p.addKey(t.Context(), env, k, rel); err != nil {
				t.Fatalf("%s %s: %v", r.Name, s.Name(), err)
			}
			got[r.Name+" "+s.Name()] = k.Sum()
			// The plan's lines, pinned too: a step's Describe moved with it.
			d := sha256.Sum256([]byte(strings.Join(s.Describe(env), "\n")))
			got[r.Name+" "+s.Name()+" plan"] = hex.EncodeToString(d[:])
		}
		got[r.Name+" order"] = strings.Join(order, ",")
	}
	var b strings.Builder
	for name, want := range pinnedKeys {
		if got[name] != want {
			t.Errorf("%s: %s, pinned %s", name, got[name], want)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		fmt.Fprintf(&b, "\t%q: %q,\n", name, got[name])
		if _, ok := pinnedKeys[name]; !ok {
			t.Errorf("%s is not pinned", name)
		}
	}
	if t.Failed() {
		t.Logf("computed:\n%s", b.String())
	}
}

// pinnedReleases answers for the archives the recipes name with fixed
// indices, so that no key depends on a mirror.
func pinnedReleases(env *Env, r *recipes.Recipe) *releases {
	rel := newReleases(env)
	for i, a := range [][]string{
		{"http://mirror.example/debian", r.Suite},
		{"http://security.example/debian-security", recipes.SecuritySuite(r.Suite)},
	} {
		id := strings.Join(append([]string{a[0], a[1], r.Architecture}, r.Components...), "\x00")
		rel.got[id] = releaseResult{rel: release{Indices: fmt.Sprintf("indices-%d", i)}}
	}
	id := strings.Join([]string{"http://other.example/debian", "bookworm", r.Architecture, "main", "contrib"}, "\x00")
	rel.got[id] = releaseResult{rel: release{Indices: "indices-other"}}
	return rel
}
