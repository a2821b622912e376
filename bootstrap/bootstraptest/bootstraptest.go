package bootstraptest

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/kjk/lzma"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Epoch is the time fixtures are dated: archives are reproducible.
var Epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// File is one entry of a package's data archive.
type File struct {
	// Path inside the image, such as /usr/bin/tool or /bin.
	Path string
	// Type is tar.TypeReg (the default), TypeDir, TypeSymlink, TypeLink,
	// TypeChar...
	Type byte
	Mode int64
	// Body of a regular file.
	Body string
	// Link is the target of a symlink or hard link.
	Link     string
	Uid, Gid int
	Xattrs   map[string]string
	DevMajor int64
	DevMinor int64
}

// Deb describes a binary package.
type Deb struct {
	Name         string
	Version      string
	Architecture string // amd64 unless set
	Priority     string // optional unless set
	Essential    bool
	Depends      string
	PreDepends   string
	Provides     string
	// Compression of data.tar: gz (the default), xz, zst, bz2, lzma or
	// none.
	Compression string
	Files       []File
	// Scripts are maintainer scripts by name (preinst, postinst...).
	Scripts map[string]string
}

func (d Deb) arch() string {
	if d.Architecture == "" {
		return "amd64"
	}
	return d.Architecture
}

// Control is the package's control file.
func (d Deb) Control() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: Test <test@example.invalid>\n", d.Name, d.Version, d.arch())
	if d.Essential {
		b.WriteString("Essential: yes\n")
	}
	prio := d.Priority
	if prio == "" {
		prio = "optional"
	}
	fmt.Fprintf(&b, "Priority: %s\n", prio)
	for _, f := range [][2]string{{"Pre-Depends", d.PreDepends}, {"Depends", d.Depends}, {"Provides", d.Provides}} {
		if f[1] != "" {
			fmt.Fprintf(&b, "%s: %s\n", f[0], f[1])
		}
	}
	fmt.Fprintf(&b, "Description: test package %s\n fixture built by bootstraptest\n", d.Name)
	return b.String()
}

// Build returns the .deb file.
func (d Deb) Build() ([]byte, error) {
	ctl, err := tarball(append([]File{{Path: "/control", Body: d.Control(), Mode: 0o644}}, scripts(d.Scripts)...))
	if err != nil {
		return nil, err
	}
	ctlgz, err := compress(ctl, "gz")
	if err != nil {
		return nil, err
	}
	data, err := tarball(d.Files)
	if err != nil {
		return nil, err
	}
	comp := d.Compression
	if comp == "" {
		comp = "gz"
	}
	datac, err := compress(data, comp)
	if err != nil {
		return nil, err
	}
	name := "data.tar"
	if comp != "none" {
		name += "." + comp
	}
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", ctlgz}, {name, datac}} {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, Epoch.Unix(), 0, 0, "100644", len(m.data))
		b.Write(m.data)
		if len(m.data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

func scripts(m map[string]string) []File {
	var out []File
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, File{Path: "/" + name, Body: m[name], Mode: 0o755})
	}
	return out
}

// tarball writes files as dpkg-deb does: "./"-relative names, after a
// "./" entry.
func tarball(files []File) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: Epoch, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	for _, f := range files {
		h := &tar.Header{Name: "." + f.Path, Typeflag: f.Type, Mode: f.Mode, Uid: f.Uid, Gid: f.Gid,
			Uname: "root", Gname: "root", ModTime: Epoch, Linkname: f.Link, Devmajor: f.DevMajor, Devminor: f.DevMinor, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeDir && !strings.HasSuffix(h.Name, "/") {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.Body))
		}
		for k, v := range f.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, f.Body); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// compress compresses b as gz, xz, zst, bz2 (with the bzip2 program: Go
// has no bzip2 writer), lzma or none.
func compress(b []byte, how string) ([]byte, error) {
	var out bytes.Buffer
	var w io.WriteCloser
	var err error
	switch how {
	case "none", "":
		return b, nil
	case "gz":
		gz := gzip.NewWriter(&out)
		gz.ModTime = Epoch
		w = gz
	case "xz":
		w, err = xz.NewWriter(&out)
	case "zst":
		w, err = zstd.NewWriter(&out)
	case "lzma":
		w = lzma.NewWriter(&out)
	case "bz2":
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(b)
		o, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("bzip2 (install the bzip2 package): %w", err)
		}
		return o, nil
	default:
		return nil, fmt.Errorf("unknown compression %q", how)
	}
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Style is how a suite is published.
type Style int

const (
	// Modern is a current suite: InRelease, Packages.xz and .gz, only
	// SHA256 checksums.
	Modern Style = iota
	// Lenny is lenny's layout: Release and Release.gpg, Packages.gz and
	// .bz2, MD5Sum, SHA1 and SHA256 checksums in the Release.
	Lenny
)

// Spec describes a repository to build.
type Spec struct {
	Suite     string // bookworm unless set
	Codename  string // Suite unless set
	Component string // main unless set
	Arch      string // amd64 unless set
	Style     Style
	Debs      []Deb
	// Unsigned publishes no signature at all.
	Unsigned bool
	// Signer signs the Release; a fresh key when nil.
	Signer *openpgp.Entity
	// SignTime dates the signature (now when zero).
	SignTime time.Time
	// WeakSums publishes these packages with an MD5sum only (no SHA256),
	// as the oldest indexes did.
	WeakSums []string
	// NoSums publishes these packages with no checksum at all, as a
	// broken or forged index might.
	NoSums []string
	// ValidUntil adds a Valid-Until field to the Release.
	ValidUntil time.Time
	// Date dates the Release (Epoch when zero).
	Date time.Time
}

// Repo is a repository written to disk.
type Repo struct {
	Dir  string
	Spec Spec
	Key  *openpgp.Entity
	// Keyring is a binary keyring file holding Key's public key.
	Keyring string
	// Requests counts the HTTP requests Serve answered, by path.
	requests atomic.Int64
}

// NewKey returns a throwaway Ed25519 signing key.
func NewKey(name string, created time.Time, lifetime time.Duration) (*openpgp.Entity, error) {
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return created }}
	if lifetime > 0 {
		cfg.KeyLifetimeSecs = uint32(lifetime.Seconds())
	}
	return openpgp.NewEntity(name, "throwaway test key", "test@example.invalid", cfg)
}

// WriteKeyring writes e's public key to path, armored or binary.
func WriteKeyring(path string, armored bool, keys ...*openpgp.Entity) error {
	var b bytes.Buffer
	var w io.Writer = &b
	var aw io.WriteCloser
	if armored {
		var err error
		if aw, err = armor.Encode(&b, openpgp.PublicKeyType, nil); err != nil {
			return err
		}
		w = aw
	}
	for _, k := range keys {
		if err := k.Serialize(w); err != nil {
			return err
		}
	}
	if aw != nil {
		if err := aw.Close(); err != nil {
			return err
		}
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// NewRepo writes the repository described by spec under a test directory.
func NewRepo(t testing.TB, spec Spec) *Repo {
	t.Helper()
	r, err := Write(t.TempDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Write writes the repository described by spec into dir.
func Write(dir string, spec Spec) (*Repo, error) {
	if spec.Suite == "" {
		spec.Suite = "bookworm"
	}
	if spec.Codename == "" {
		spec.Codename = spec.Suite
	}
	if spec.Component == "" {
		spec.Component = "main"
	}
	if spec.Arch == "" {
		spec.Arch = "amd64"
	}
	r := &Repo{Dir: dir, Spec: spec, Key: spec.Signer}
	if r.Key == nil {
		k, err := NewKey("krgimage test archive key", time.Now().Add(-time.Hour), 0)
		if err != nil {
			return nil, err
		}
		r.Key = k
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r.Keyring = filepath.Join(dir, "keyring.gpg")
	if err := WriteKeyring(r.Keyring, false, r.Key); err != nil {
		return nil, err
	}
	var idx strings.Builder
	for _, d := range spec.Debs {
		b, err := d.Build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name, err)
		}
		file := r.PoolPath(d)
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(file)), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
			return nil, err
		}
		idx.WriteString(d.Control())
		fmt.Fprintf(&idx, "Filename: %s\nSize: %d\n", file, len(b))
		if slices.Contains(spec.NoSums, d.Name) {
			idx.WriteString("\n")
			continue
		}
		m := md5.Sum(b)
		fmt.Fprintf(&idx, "MD5sum: %s\n", hex.EncodeToString(m[:]))
		if !slices.Contains(spec.WeakSums, d.Name) {
			s1 := sha1.Sum(b)
			s256 := sha256.Sum256(b)
			if spec.Style == Lenny {
				fmt.Fprintf(&idx, "SHA1: %s\n", hex.EncodeToString(s1[:]))
			}
			fmt.Fprintf(&idx, "SHA256: %s\n", hex.EncodeToString(s256[:]))
		}
		idx.WriteString("\n")
	}
	if err := r.WriteIndex([]byte(idx.String())); err != nil {
		return nil, err
	}
	return r, nil
}

// PoolPath is where a package's file lives in the repository: as in
// Debian's pool, the file name leaves out the version's epoch.
func (r *Repo) PoolPath(d Deb) string {
	v := d.Version
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	return path.Join("pool", r.Spec.Component, d.Name[:1], d.Name, fmt.Sprintf("%s_%s_%s.deb", d.Name, v, d.arch()))
}

// Dists is the suite's directory.
func (r *Repo) Dists() string { return filepath.Join(r.Dir, "dists", r.Spec.Suite) }

// WriteIndex publishes a Packages index (in every compression the style
// uses) and a signed Release listing it.
func (r *Repo) WriteIndex(packages []byte) error {
	s := r.Spec
	rel := filepath.Join(s.Component, "binary-"+s.Arch)
	if err := os.MkdirAll(filepath.Join(r.Dists(), rel), 0o755); err != nil {
		return err
	}
	forms := []string{"", "gz", "xz"}
	if s.Style == Lenny {
		forms = []string{"", "gz", "bz2"}
	}
	files := map[string][]byte{}
	for _, f := range forms {
		b, err := compress(packages, f)
		if err != nil {
			return err
		}
		name := filepath.Join(rel, "Packages")
		if f != "" {
			name += "." + f
		}
		files[name] = b
		// Debian lists the plain index in its Release but does not
		// serve it; Lenny's mirrors did. Do the same.
		if f == "" && s.Style == Modern {
			continue
		}
		if err := os.WriteFile(filepath.Join(r.Dists(), name), b, 0o644); err != nil {
			return err
		}
	}
	return r.WriteRelease(r.ReleaseText(files))
}

// ReleaseText renders a Release listing files (path relative to the
// suite's directory -> content).
func (r *Repo) ReleaseText(files map[string][]byte) []byte {
	s := r.Spec
	var b strings.Builder
	fmt.Fprintf(&b, "Origin: Debian\nLabel: Debian\nSuite: %s\nCodename: %s\nDate: %s\nArchitectures: %s\nComponents: %s\nDescription: krgimage test repository\n",
		s.Suite, s.Codename, cmp.Or(s.Date, Epoch).UTC().Format(time.RFC1123), s.Arch, s.Component)
	if !s.ValidUntil.IsZero() {
		fmt.Fprintf(&b, "Valid-Until: %s\n", s.ValidUntil.UTC().Format(time.RFC1123))
	}
	names := slices.Sorted(maps.Keys(files))
	sums := []string{"SHA256"}
	if s.Style == Lenny {
		sums = []string{"MD5Sum", "SHA1", "SHA256"}
	}
	for _, algo := range sums {
		fmt.Fprintf(&b, "%s:\n", algo)
		for _, n := range names {
			var sum string
			switch algo {
			case "MD5Sum":
				h := md5.Sum(files[n])
				sum = hex.EncodeToString(h[:])
			case "SHA1":
				h := sha1.Sum(files[n])
				sum = hex.EncodeToString(h[:])
			default:
				h := sha256.Sum256(files[n])
				sum = hex.EncodeToString(h[:])
			}
			fmt.Fprintf(&b, " %s %8d %s\n", sum, len(files[n]), filepath.ToSlash(n))
		}
	}
	return []byte(b.String())
}

// WriteRelease signs and publishes a Release text: as InRelease (modern)
// or as Release and Release.gpg (lenny), or unsigned.
func (r *Repo) WriteRelease(text []byte) error {
	s := r.Spec
	write := func(name string, b []byte) error { return os.WriteFile(filepath.Join(r.Dists(), name), b, 0o644) }
	for _, n := range []string{"InRelease", "Release", "Release.gpg"} {
		os.Remove(filepath.Join(r.Dists(), n))
	}
	when := s.SignTime
	if when.IsZero() {
		when = time.Now()
	}
	cfg := &packet.Config{Time: func() time.Time { return when }}
	switch {
	case s.Unsigned:
		return write("Release", text)
	case s.Style == Lenny:
		var sig bytes.Buffer
		if err := openpgp.ArmoredDetachSign(&sig, r.Key, bytes.NewReader(text), cfg); err != nil {
			return err
		}
		if err := write("Release", text); err != nil {
			return err
		}
		return write("Release.gpg", sig.Bytes())
	default:
		var out bytes.Buffer
		w, err := clearsign.Encode(&out, r.Key.PrivateKey, cfg)
		if err != nil {
			return err
		}
		if _, err := w.Write(text); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		return write("InRelease", out.Bytes())
	}
}

// Serve serves the repository over HTTP until the test ends and returns
// its URL. Range requests work, as on a real mirror.
func (r *Repo) Serve(t testing.TB) string {
	t.Helper()
	fs := http.FileServer(http.Dir(r.Dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		fs.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Requests is how many requests Serve has answered.
func (r *Repo) Requests() int64 { return r.requests.Load() }
