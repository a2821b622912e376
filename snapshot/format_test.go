package snapshot

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestTarRoundTrip writes headers that need every PAX escape hatch and
// reads them back with our reader and with archive/tar.
func TestTarRoundTrip(t *testing.T) {
	long := "./" + strings.Repeat("d/", 60) + strings.Repeat("n", 120)
	tests := []struct {
		name string
		h    tarHeader
		data string
	}{
		{"plain", tarHeader{Name: "./etc/hostname", Typeflag: typeReg, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}, "node1\n"},
		{"ustar-prefix", tarHeader{Name: "./" + strings.Repeat("p", 120) + "/file", Typeflag: typeReg, Mode: 0o600, ModTime: time.Unix(1, 0)}, "x"},
		{"long-path", tarHeader{Name: long, Typeflag: typeReg, Mode: 0o4755, ModTime: time.Unix(1700000000, 123456789)}, "deep"},
		{"non-utf8", tarHeader{Name: "./bad-\xff\xfe", Typeflag: typeSymlink, Linkname: "target-\xff", Mode: 0o777, ModTime: time.Unix(5, 0)}, ""},
		{"long-link", tarHeader{Name: "./l", Typeflag: typeSymlink, Linkname: strings.Repeat("t/", 80), Mode: 0o777, ModTime: time.Unix(5, 0)}, ""},
		{"big-ids", tarHeader{Name: "./ids", Typeflag: typeDir, Mode: 0o1777, UID: 1 << 31, GID: 4000000000, ModTime: time.Unix(5, 0)}, ""},
		{"before-1970", tarHeader{Name: "./old", Typeflag: typeReg, Mode: 0o644, ModTime: time.Unix(-3, 250000000)}, ""},
		{"device", tarHeader{Name: "./dev/sda", Typeflag: typeBlock, Mode: 0o660, Devmajor: 8, Devminor: 1, ModTime: time.Unix(5, 0)}, ""},
		{"xattrs", tarHeader{Name: "./ping", Typeflag: typeReg, Mode: 0o755, ModTime: time.Unix(5, 0),
			PAX: map[string]string{paxXattr + "security.capability": string(capNetRaw), paxXattr + "user.x": "a=b\nc\x00"}}, "elf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tw := newTarWriter(&b)
			h := tt.h
			h.Size = int64(len(tt.data))
			must(t, tw.WriteHeader(&h))
			_, err := tw.Write([]byte(tt.data))
			must(t, err)
			must(t, tw.Close())
			if b.Len()%blockSize != 0 {
				t.Errorf("archive of %d bytes", b.Len())
			}

			tr := newTarReader(bytes.NewReader(b.Bytes()))
			got, err := tr.Next()
			must(t, err)
			data, err := io.ReadAll(tr)
			must(t, err)
			if got.Name != h.Name || got.Linkname != h.Linkname || got.Mode != h.Mode || got.UID != h.UID || got.GID != h.GID ||
				!got.ModTime.Equal(h.ModTime) || got.Devmajor != h.Devmajor || got.Devminor != h.Devminor || string(data) != tt.data {
				t.Errorf("read back %+v %q, wrote %+v", got, data, h)
			}
			for k, v := range h.PAX {
				if got.PAX[k] != v {
					t.Errorf("PAX %s = %q, want %q", k, got.PAX[k], v)
				}
			}
			if _, err := tr.Next(); err != io.EOF {
				t.Errorf("second Next() = %v, want io.EOF", err)
			}

			gr := tar.NewReader(bytes.NewReader(b.Bytes()))
			gh, err := gr.Next()
			must(t, err)
			if gh.Name != h.Name || gh.Linkname != h.Linkname || !gh.ModTime.Equal(h.ModTime) || gh.Uid != int(h.UID) {
				t.Errorf("archive/tar reads %q %q %v %d", gh.Name, gh.Linkname, gh.ModTime, gh.Uid)
			}
		})
	}
}

// TestSparseFormat checks our GNU 1.0 sparse entries against archive/tar,
// which reads that format.
func TestSparseFormat(t *testing.T) {
	var b bytes.Buffer
	tw := newTarWriter(&b)
	h := &tarHeader{Name: "./var/log/lastlog", Typeflag: typeReg, Mode: 0o664, Size: 1 << 20, ModTime: time.Unix(5, 0),
		Sparse: []segment{{4096, 3}, {8192, 2}}}
	must(t, tw.WriteHeader(h))
	_, err := tw.Write([]byte("abcde"))
	must(t, err)
	must(t, tw.Close())
	gr := tar.NewReader(bytes.NewReader(b.Bytes()))
	gh, err := gr.Next()
	must(t, err)
	data, err := io.ReadAll(gr)
	must(t, err)
	want := make([]byte, 1<<20)
	copy(want[4096:], "abc")
	copy(want[8192:], "de")
	if gh.Name != h.Name || gh.Size != h.Size || !bytes.Equal(data, want) {
		t.Errorf("archive/tar reads %q, size %d, content equal %v", gh.Name, gh.Size, bytes.Equal(data, want))
	}
	tr := newTarReader(bytes.NewReader(b.Bytes()))
	got, err := tr.Next()
	must(t, err)
	if got.Name != h.Name || got.Size != h.Size || len(got.Sparse) != 3 || got.Sparse[0] != h.Sparse[0] || got.Sparse[2] != (segment{1 << 20, 0}) {
		t.Errorf("read back %q size %d map %v", got.Name, got.Size, got.Sparse)
	}
}

func TestPAXRecordLength(t *testing.T) {
	for n := 0; n < 1100; n++ {
		r, err := paxRecord("k", strings.Repeat("v", n))
		must(t, err)
		recs, _, err := parsePAX([]byte(r))
		if err != nil || recs["k"] != strings.Repeat("v", n) {
			t.Fatalf("value of %d bytes: %q: %v", n, r, err)
		}
	}
}

func TestACLText(t *testing.T) {
	lookup := func(group bool, name string) (uint32, error) {
		if name == "alice" && !group {
			return 1000, nil
		}
		if name == "staff" && group {
			return 50, nil
		}
		return 0, errors.New("no such name")
	}
	want := "user::rw-\nuser:1000:r-x\ngroup::r--\ngroup:50:rw-\nmask::rwx\nother::r--\n"
	tests := []struct{ name, in string }{
		{"ours", want},
		{"gnu-tar-names", "user::rw-\nuser:alice:r-x\ngroup::r--\ngroup:staff:rw-\nmask::rwx\nother::r--\n"},
		{"bsdtar", "user::rw-,group::r--,other::r--,user:alice:r-x:1000,group:staff:rw-:50,mask::rwx"},
		{"short-tags", "u::rw-,u:1000:r-x,g::r--,g:50:rw-,m::rwx,o::r--"},
		{"comments", "user::rw-\nuser:1000:r-x  #effective:r-x\ngroup::r--\ngroup:50:rw-\nmask::rwx\nother::r--\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := parseACLText(tt.in, lookup)
			must(t, err)
			got, err := aclText(b)
			must(t, err)
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	if b, err := parseACLText("user::rwx,user:7:r--,group::r-x,other::---", lookup); err != nil || !strings.Contains(must2(aclText(b)), "mask::r-x") {
		t.Errorf("no mask computed: %v", err)
	}
	for _, bad := range []string{"user::rwz", "nobody::rwx", "user:ghost:rwx", "mask:1:rwx", "user::rw-,user::r--"} {
		if _, err := parseACLText(bad, lookup); err == nil {
			t.Errorf("parseACLText(%q) succeeded", bad)
		}
	}
}

func must2(s string, err error) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// TestDigest checks that the chunked digest depends on the content only,
// not on how it is split into data and holes.
func TestDigest(t *testing.T) {
	size := int64(chunkedThreshold + 3*digestChunk + 17)
	data := func(d *digester) {
		buf := make([]byte, size)
		copy(buf[5:], "x")
		copy(buf[size-4:], "tail")
		for p := buf; len(p) > 0; {
			n := min(len(p), 123457)
			d.Write(p[:n])
			p = p[n:]
		}
	}
	holes := func(d *digester) {
		d.Hole(5)
		d.Write([]byte("x"))
		d.Hole(size - 10)
		d.Write([]byte("tail"))
	}
	a, b := newDigester(size), newDigester(size)
	data(a)
	holes(b)
	ka, sa, oka := a.Sum()
	kb, sb, okb := b.Sum()
	if !oka || !okb || ka != keyChunked || sa != sb || ka != kb {
		t.Errorf("data: %s %s %v; holes: %s %s %v", ka, sa, oka, kb, sb, okb)
	}
	small := newDigester(3)
	small.Write([]byte("abc"))
	if k, s, _ := small.Sum(); k != keySHA256 || s != sha256hex("abc") {
		t.Errorf("small file: %s %s, want the plain SHA-256", k, s)
	}
	short := newDigester(10)
	short.Write([]byte("abc"))
	if _, _, ok := short.Sum(); ok {
		t.Error("a short content summed")
	}
}

func TestEscape(t *testing.T) {
	for _, s := range []string{"plain", "with space", "new\nline", "back\\slash", "eq=ual", "#hash", "bad\xff", ""} {
		got, err := unescape(escape(s))
		if err != nil || got != s {
			t.Errorf("unescape(escape(%q)) = %q, %v", s, got, err)
		}
		if strings.ContainsAny(escape(s), " \n=") {
			t.Errorf("escape(%q) = %q", s, escape(s))
		}
	}
}

func TestCompressionForPath(t *testing.T) {
	for _, tc := range []struct {
		name  string
		want  Compression
		named bool
		bad   bool
	}{
		{"a.tar.zst", Zstd, true, false}, {"A.TZST", Zstd, true, false}, {"a.tar.zstd", Zstd, true, false},
		{"a.tar.gz", Gzip, true, false}, {"a.tgz", Gzip, true, false}, {"B.TAR.GZ", Gzip, true, false},
		{"a.tar.xz", XZ, true, false}, {"a.tar", None, true, false},
		{"a", Zstd, false, false}, {"node.img", Zstd, false, false},
		{"a.tar.bz2", Zstd, true, true}, {"a.tar.lz4", Zstd, true, true}, {"a.tar.Z", Zstd, true, true},
	} {
		c, named, err := CompressionFromName(tc.name)
		if c != tc.want || named != tc.named || (err != nil) != tc.bad {
			t.Errorf("CompressionFromName(%q) = %s, %v, %v", tc.name, c, named, err)
		}
	}
	if err := (Options{Compression: Zstd, Level: 23}).Validate(); err == nil {
		t.Error("zstd level 23 accepted")
	}
	if err := (Options{Compression: "lz4"}).Validate(); err == nil {
		t.Error("lz4 accepted")
	}
}

func TestPackages(t *testing.T) {
	status := func(pkgs ...string) []byte {
		var b strings.Builder
		for i := 0; i < len(pkgs); i += 2 {
			b.WriteString("Package: " + pkgs[i] + "\nStatus: install ok installed\nArchitecture: amd64\nVersion: " + pkgs[i+1] + "\n\n")
		}
		b.WriteString("Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n")
		return []byte(b.String())
	}
	a, err := parseDpkgStatus(status("bash", "5.2.15-2+b2", "libc6", "2.36-9", "old", "1.0"))
	must(t, err)
	b, err := parseDpkgStatus(status("bash", "5.2.15-2+b2", "libc6", "2.36-9+deb12u4", "new", "0:2.0"))
	must(t, err)
	got := comparePackages(a, b)
	want := []PackageChange{{"libc6", "2.36-9", "2.36-9+deb12u4"}, {"new", "", "0:2.0"}, {"old", "1.0", ""}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %v, want %v", got[i], want[i])
		}
	}
}

// TestCleanRel: what cleanName returns is clean, and nothing else is.
func TestCleanRel(t *testing.T) {
	for _, name := range []string{"./", "a", "./a/b/", "a//b", "bad-\xff\xfe", "a/./b", "...", "a/..b"} {
		rel, ok := cleanName(name)
		if !ok || !isCleanRel(rel) {
			t.Errorf("cleanName(%q) = %q, %v: isCleanRel says %v", name, rel, ok, isCleanRel(rel))
		}
	}
	for _, rel := range []string{"", "/", "/a", "a/", "a//b", "..", "a/..", "../a", "a/./b", "./a", "a/."} {
		if isCleanRel(rel) {
			t.Errorf("isCleanRel(%q) = true", rel)
		}
	}
}
