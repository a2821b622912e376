package debarchive

import (
	"bytes"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/krgimage/krgimage/bootstrap/bootstraptest"
	"github.com/krgimage/krgimage/internal/testenv"
)

// TestHostKeyring loads Debian's own keyring: its RSA-4096 and Ed25519
// keys must all be read. debian-archive-keyring is among the host tools
// a build needs (make deps installs it).
func TestHostKeyring(t *testing.T) {
	if _, err := os.Stat(DefaultKeyring); err != nil {
		testenv.Missing(t, "%s: %v (make deps installs debian-archive-keyring)", DefaultKeyring, err)
	}
	k, err := LoadKeyring(DefaultKeyring)
	if err != nil {
		t.Fatal(err)
	}
	algos := map[packet.PublicKeyAlgorithm]int{}
	for _, e := range k.keys {
		algos[e.PrimaryKey.PubKeyAlgo]++
	}
	if algos[packet.PubKeyAlgoRSA] == 0 || algos[packet.PubKeyAlgoEdDSA] == 0 {
		t.Errorf("keys by algorithm: %v, want RSA and Ed25519 ones", algos)
	}
	// The directory form: every key file of /usr/share/keyrings, which holds
	// the removed (expired) keys besides the current ones.
	if d, err := LoadKeyring(filepath.Dir(DefaultKeyring)); err != nil || d.Len() <= k.Len() {
		t.Errorf("LoadKeyring(dir) = %v keys, %v", d, err)
	}
}

// sha1Sign makes a detached SHA-1 signature, as lenny's archive did; the
// library's signing functions refuse SHA-1, so the packet is made by hand.
func sha1Sign(t *testing.T, key *openpgp.Entity, text []byte) []byte {
	t.Helper()
	sig := &packet.Signature{SigType: packet.SigTypeBinary, PubKeyAlgo: key.PrivateKey.PubKeyAlgo, Hash: crypto.SHA1,
		CreationTime: time.Now(), IssuerKeyId: &key.PrivateKey.KeyId}
	// The salt notation the library adds by default has no SHA-1 form.
	deterministic := false
	cfg := &packet.Config{NonDeterministicSignaturesViaNotation: &deterministic}
	h, err := sig.PrepareSign(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(text)
	if err := sig.Sign(h, key.PrivateKey, cfg); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := sig.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sign(t *testing.T, key *openpgp.Entity, text []byte, when time.Time, hash crypto.Hash) (inrelease, detached []byte) {
	t.Helper()
	cfg := &packet.Config{Time: func() time.Time { return when }, DefaultHash: hash}
	var in bytes.Buffer
	w, err := clearsign.Encode(&in, key.PrivateKey, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(text)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var sig bytes.Buffer
	if err := openpgp.DetachSign(&sig, key, bytes.NewReader(text), cfg); err != nil {
		t.Fatal(err)
	}
	return in.Bytes(), sig.Bytes()
}

func TestVerify(t *testing.T) {
	now := time.Now()
	good, err := bootstraptest.NewKey("archive", now.Add(-time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := bootstraptest.NewKey("stranger", now.Add(-time.Hour), 0)
	expired, _ := bootstraptest.NewKey("old archive", now.Add(-48*time.Hour), 24*time.Hour)
	// Ed25519 cannot sign with SHA-1; lenny's RSA keys did.
	rsa, err := openpgp.NewEntity("old rsa archive", "", "rsa@example.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	armored, binary := filepath.Join(dir, "k.asc"), filepath.Join(dir, "k.gpg")
	if err := bootstraptest.WriteKeyring(armored, true, good, expired, rsa); err != nil {
		t.Fatal(err)
	}
	if err := bootstraptest.WriteKeyring(binary, false, good, expired, rsa); err != nil {
		t.Fatal(err)
	}
	text := []byte("Origin: Debian\nCodename: test\n-----BEGIN PGP lookalike line\n")

	for _, path := range []string{armored, binary} {
		k, err := LoadKeyring(path)
		if err != nil || k.Len() != 3 {
			t.Fatalf("LoadKeyring(%s) = %v, %v", path, k, err)
		}
	}
	k, _ := LoadKeyring(armored)

	in, det := sign(t, good, text, now, crypto.SHA256)
	plain, sig, err := k.VerifyInRelease(in, VerifyOptions{})
	if err != nil || !bytes.Equal(plain, text) || !strings.Contains(sig.Signer, "archive") || sig.Expired || sig.Weak {
		t.Errorf("VerifyInRelease = %q, %+v, %v", plain, sig, err)
	}
	if _, err := k.VerifyDetached(text, det, VerifyOptions{}); err != nil {
		t.Errorf("VerifyDetached(binary signature) = %v", err)
	}

	tests := []struct {
		name   string
		verify func(t *testing.T) error
		want   error
	}{
		{"tampered", func(t *testing.T) error {
			_, _, err := k.VerifyInRelease(bytes.Replace(in, []byte("Codename: test"), []byte("Codename: tost"), 1), VerifyOptions{})
			return err
		}, ErrSignature},
		{"tampered detached", func(t *testing.T) error {
			_, err := k.VerifyDetached(append(text, 'x'), det, VerifyOptions{})
			return err
		}, ErrSignature},
		{"not signed", func(t *testing.T) error { _, _, err := k.VerifyInRelease(text, VerifyOptions{}); return err }, ErrSignature},
		{"unknown key", func(t *testing.T) error {
			in, _ := sign(t, other, text, now, crypto.SHA256)
			_, _, err := k.VerifyInRelease(in, VerifyOptions{})
			return err
		}, ErrUnknownKey},
		{"expired key", func(t *testing.T) error {
			in, _ := sign(t, expired, text, now.Add(-47*time.Hour), crypto.SHA256)
			_, _, err := k.VerifyInRelease(in, VerifyOptions{})
			return err
		}, ErrKeyExpired},
		{"expired key, archived suite", func(t *testing.T) error {
			in, _ := sign(t, expired, text, now.Add(-47*time.Hour), crypto.SHA256)
			_, sig, err := k.VerifyInRelease(in, VerifyOptions{Archived: true})
			if err == nil && !sig.Expired {
				t.Error("an expired key's signature is not marked expired")
			}
			return err
		}, nil},
		{"SHA-1", func(t *testing.T) error {
			_, err := k.VerifyDetached(text, sha1Sign(t, rsa, text), VerifyOptions{})
			return err
		}, ErrSignature},
		{"SHA-1, archived suite", func(t *testing.T) error {
			sig, err := k.VerifyDetached(text, sha1Sign(t, rsa, text), VerifyOptions{Archived: true})
			if err == nil && !sig.Weak {
				t.Error("a SHA-1 signature is not marked weak")
			}
			return err
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.verify(t)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}

	if _, err := LoadKeyring(filepath.Join(dir, "missing.gpg")); err == nil {
		t.Error("LoadKeyring(missing) = nil error")
	}
	empty := filepath.Join(dir, "empty.gpg")
	os.WriteFile(empty, nil, 0o644)
	if _, err := LoadKeyring(empty); err == nil {
		t.Error("LoadKeyring(empty) = nil error")
	}
}
