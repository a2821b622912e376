package debarchive

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// DefaultKeyring is the keyring Release files are checked against when the
// recipe names none: debootstrap's default.
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// RemovedKeyring holds the keys of suites no longer supported, lenny's
// among them; archived suites are checked against it too.
const RemovedKeyring = "/usr/share/keyrings/debian-archive-removed-keys.gpg"

// Keyring holds the keys a Release may be signed with.
type Keyring struct {
	keys openpgp.EntityList
}

// LoadKeyring reads OpenPGP public keys from a file, binary or armored, or
// from every *.gpg, *.asc and *.pgp file of a directory.
func LoadKeyring(path string) (*Keyring, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	files := []string{path}
	if fi.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		for _, e := range entries {
			switch filepath.Ext(e.Name()) {
			case ".gpg", ".asc", ".pgp":
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	k := &Keyring{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		el, err := readKeys(b)
		if err != nil {
			return nil, fmt.Errorf("keyring %s: %w", f, err)
		}
		k.keys = append(k.keys, el...)
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("keyring %s: no OpenPGP public keys in it", path)
	}
	return k, nil
}

// readKeys reads a binary keyring, or any number of armored key blocks.
func readKeys(b []byte) (openpgp.EntityList, error) {
	if !bytes.Contains(b, []byte("-----BEGIN PGP")) {
		return openpgp.ReadKeyRing(bytes.NewReader(b))
	}
	var out openpgp.EntityList
	r := bytes.NewReader(b)
	for {
		blk, err := armor.Decode(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if blk.Type != openpgp.PublicKeyType && blk.Type != openpgp.PrivateKeyType {
			continue
		}
		el, err := openpgp.ReadKeyRing(blk.Body)
		if err != nil {
			return nil, err
		}
		out = append(out, el...)
	}
	return out, nil
}

// Len is the number of primary keys.
func (k *Keyring) Len() int { return len(k.keys) }

// Add adds o's keys to k: an archived suite is checked against the
// removed keys as well as the current ones.
func (k *Keyring) Add(o *Keyring) { k.keys = append(k.keys, o.keys...) }

// VerifyOptions relax signature checks for archived suites.
type VerifyOptions struct {
	// Archived accepts expired keys and signatures and SHA-1 signatures,
	// as an archived suite such as lenny needs.
	Archived bool
	// Now is the time keys must be valid at (time.Now if zero).
	Now time.Time
}

// Signature is what a good signature established.
type Signature struct {
	// Signer is the key ID and user ID of the key that signed.
	Signer string
	// Created is when the signature was made.
	Created time.Time
	// Expired is set when the key or signature had expired, which only
	// an archived suite accepts.
	Expired bool
	// Weak is set for a SHA-1 signature, which only an archived suite
	// accepts.
	Weak bool
}

// VerifyInRelease checks a clearsigned InRelease and returns its text.
func (k *Keyring) VerifyInRelease(data []byte, o VerifyOptions) ([]byte, *Signature, error) {
	blk, _ := clearsign.Decode(data)
	if blk == nil {
		return nil, nil, fmt.Errorf("%w: InRelease is not a clearsigned message", ErrSignature)
	}
	sigs, err := io.ReadAll(blk.ArmoredSignature.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: InRelease signature: %v", ErrSignature, err)
	}
	sig, err := k.verify(blk.Bytes, sigs, o)
	if err != nil {
		return nil, nil, err
	}
	return blk.Plaintext, sig, nil
}

// VerifyDetached checks Release against Release.gpg (armored or binary).
func (k *Keyring) VerifyDetached(release, signature []byte, o VerifyOptions) (*Signature, error) {
	if bytes.Contains(signature, []byte("-----BEGIN PGP")) {
		blk, err := armor.Decode(bytes.NewReader(signature))
		if err != nil {
			return nil, fmt.Errorf("%w: Release.gpg: %v", ErrSignature, err)
		}
		if signature, err = io.ReadAll(blk.Body); err != nil {
			return nil, fmt.Errorf("%w: Release.gpg: %v", ErrSignature, err)
		}
	}
	return k.verify(release, signature, o)
}

// verify accepts the signed data when one of the signatures in sigs is a
// good one by a key of the keyring. A Release carries several signatures
// (one per archive key in use), and a keyring rarely has them all, so
// each signature whose key is known is tried in turn.
func (k *Keyring) verify(signed, sigs []byte, o VerifyOptions) (*Signature, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	config := &packet.Config{Time: func() time.Time { return now }}
	var issuers []uint64
	pr := packet.NewReader(bytes.NewReader(sigs))
	for {
		p, err := pr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading the signature: %v", ErrSignature, err)
		}
		s, ok := p.(*packet.Signature)
		if !ok {
			return nil, fmt.Errorf("%w: the signature holds a packet that is no signature", ErrSignature)
		}
		if s.IssuerKeyId != nil && !slices.Contains(issuers, *s.IssuerKeyId) {
			issuers = append(issuers, *s.IssuerKeyId)
		}
	}
	if len(issuers) == 0 {
		return nil, fmt.Errorf("%w: no signature", ErrSignature)
	}
	var errs []error
	known := false
	for _, id := range issuers {
		one := &oneKey{keys: k.keys, id: id, legacy: o.Archived}
		if len(one.KeysByIdUsage(id, packet.KeyFlagSign)) == 0 {
			continue
		}
		known = true
		sig, signer, err := openpgp.VerifyDetachedSignature(one, bytes.NewReader(signed), bytes.NewReader(sigs), config)
		expired := errors.Is(err, pgperrors.ErrKeyExpired) || errors.Is(err, pgperrors.ErrSignatureExpired)
		switch {
		case err == nil, expired && o.Archived:
		case expired:
			errs = append(errs, fmt.Errorf("%w: key %016X (%s) had expired by %s; an archived suite whose keys have expired needs archived: true in the recipe",
				ErrKeyExpired, id, entityName(signer), now.Format(time.DateOnly)))
			continue
		default:
			errs = append(errs, fmt.Errorf("%w: key %016X: %v", ErrSignature, id, err))
			continue
		}
		weak := sig.Hash == crypto.SHA1 || sig.Hash == crypto.MD5
		if weak && !o.Archived {
			errs = append(errs, fmt.Errorf("%w: key %016X signed with %s, which is broken; only an archived suite (archived: true) may rely on it", ErrSignature, id, sig.Hash))
			continue
		}
		return &Signature{Signer: fmt.Sprintf("%016X %s", id, entityName(signer)), Created: sig.CreationTime, Expired: expired, Weak: weak}, nil
	}
	if !known {
		ids := make([]string, len(issuers))
		for i, id := range issuers {
			ids[i] = fmt.Sprintf("%016X", id)
		}
		return nil, fmt.Errorf("%w: signed by %s, none of which is in the keyring", ErrUnknownKey, strings.Join(ids, ", "))
	}
	return nil, errors.Join(errs...)
}

func entityName(e *openpgp.Entity) string {
	if e == nil {
		return "?"
	}
	if id := e.PrimaryIdentity(); id != nil {
		return id.Name
	}
	return "?"
}

// oneKey is a keyring that shows only the keys with one ID, so that the
// library checks the signature made by that key and no other.
type oneKey struct {
	keys openpgp.EntityList
	id   uint64
	// legacy accepts keys whose self-signature states no usage, as keys
	// made before key flags existed do (archived suites only).
	legacy bool
}

func (o *oneKey) KeysById(id uint64) []openpgp.Key {
	if id != o.id {
		return nil
	}
	return o.keys.KeysById(id)
}

func (o *oneKey) KeysByIdUsage(id uint64, usage byte) []openpgp.Key {
	if id != o.id {
		return nil
	}
	if keys := o.keys.KeysByIdUsage(id, usage); len(keys) > 0 || !o.legacy {
		return keys
	}
	var out []openpgp.Key
	for _, k := range o.keys.KeysById(id) {
		if k.SelfSignature == nil || !k.SelfSignature.FlagsValid {
			out = append(out, k)
		}
	}
	return out
}

func (o *oneKey) DecryptionKeys() []openpgp.Key { return nil }
