package bootstrap

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/krgimage/krgimage/internal/logging"
	"github.com/krgimage/krgimage/internal/progress"
	"github.com/krgimage/krgimage/internal/run"
)

func TestArgs(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want []string
	}{
		{
			name: "seed",
			o:    Options{Suite: "lenny", Target: "/NFSROOT/kerrighed", Mirror: "http://m/debian", Variant: "important"},
			want: []string{"lenny", "/NFSROOT/kerrighed", "http://m/debian"},
		},
		{
			name: "everything",
			o: Options{Suite: "bookworm", Arch: "amd64", Variant: "minbase", Components: []string{"main", "contrib"},
				Include: []string{"a", "b"}, Exclude: []string{"c"}, Keyring: "/k.gpg", MergedUsr: "no", Foreign: true,
				Target: "/t", Mirror: "http://m/debian"},
			want: []string{"--arch=amd64", "--variant=minbase", "--components=main,contrib", "--include=a,b",
				"--exclude=c", "--keyring=/k.gpg", "--no-merged-usr", "--foreign", "bookworm", "/t", "http://m/debian"},
		},
		{
			name: "insecure wins over keyring",
			o:    Options{Suite: "sid", Insecure: true, Keyring: "/k.gpg", MergedUsr: "yes", Target: "/t", Mirror: "file:///m"},
			want: []string{"--no-check-gpg", "--merged-usr", "sid", "/t", "file:///m"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Args(tt.o); !slices.Equal(got, tt.want) {
				t.Errorf("Args() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProgressParser(t *testing.T) {
	f, err := os.Open("testdata/debootstrap-bookworm-minbase.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &progressParser{log: logging.Discard(), task: progress.New(nil, false).Task("bootstrap", 0)}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p.line(sc.Text())
	}
	want := map[phase]int64{phaseRetrieve: 88, phaseExtract: 88, phaseUnpack: 88, phaseConfigure: 89}
	for ph, n := range want {
		if got := p.count(ph); got != n {
			t.Errorf("%s: counted %d packages, want %d", phaseNames[ph], got, n)
		}
	}
	if p.total != 88 {
		t.Errorf("total = %d, want 88", p.total)
	}
}

// fakeHost is a build machine of the test's choosing.
type fakeHost struct {
	euid    int
	machine string
	binfmt  map[string]bool
	client  *http.Client
}

func (h fakeHost) Geteuid() int              { return h.euid }
func (h fakeHost) Machine() string           { return h.machine }
func (h fakeHost) Binfmt(a string) bool      { return h.binfmt[a] }
func (h fakeHost) HTTP() *http.Client        { return h.client }
func (h fakeHost) withEUID(n int) Host       { h.euid = n; return h }
func (h fakeHost) withMachine(m string) Host { h.machine = m; return h }

const bookwormRelease = `Origin: Debian
Suite: stable
Codename: bookworm
Architectures: all amd64 arm64 armel armhf i386 mips64el mipsel ppc64el s390x
Components: main contrib non-free-firmware non-free
SHA256:
 0000000000000000000000000000000000000000000000000000000000000000 1 main/binary-amd64/Packages
`

// mirrorServer serves a Release for bookworm only.
func mirrorServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/debian/dists/bookworm/InRelease":
			w.Write([]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + bookwormRelease + "-----BEGIN PGP SIGNATURE-----\n\nd2hhdGV2ZXI=\n-----END PGP SIGNATURE-----\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fakeDebootstrap writes an executable standing in for debootstrap.
func fakeDebootstrap(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "debootstrap")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPreflight(t *testing.T) {
	srv := mirrorServer(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	good := fakeHost{euid: 0, machine: "x86_64", client: srv.Client()}
	okBin := fakeDebootstrap(t, "exit 0")
	nonEmpty := t.TempDir()
	os.WriteFile(filepath.Join(nonEmpty, "x"), nil, 0o644)
	base := Options{Suite: "bookworm", Arch: "amd64", Components: []string{"main"}, Mirror: srv.URL + "/debian", Insecure: true}

	tests := []struct {
		name   string
		host   Host
		binary string
		edit   func(*Options)
		want   error
		text   string
	}{
		{name: "ok", host: good, binary: okBin},
		{name: "not root", host: good.withEUID(1000), binary: okBin, want: ErrNotRoot, text: "run krgimage build as root"},
		{name: "debootstrap missing", host: good, binary: "/nonexistent/debootstrap", want: ErrMissingTool, text: "apt-get install debootstrap"},
		{name: "target not empty", host: good, binary: okBin, edit: func(o *Options) { o.Target = nonEmpty }, want: ErrTargetNotEmpty},
		{name: "mirror unreachable", host: good, binary: okBin, edit: func(o *Options) { o.Mirror = closedURL + "/debian" }, want: ErrMirror},
		{name: "suite unknown", host: good, binary: okBin, edit: func(o *Options) { o.Suite = "lenny" }, want: ErrUnknownSuite, text: "archive mirror"},
		{name: "arch not on mirror", host: good, binary: okBin, edit: func(o *Options) { o.Arch = "alpha" }, want: ErrUnknownSuite, text: "has no alpha packages"},
		{name: "component not on mirror", host: good, binary: okBin, edit: func(o *Options) { o.Components = []string{"main", "bogus"} }, want: ErrUnknownSuite, text: "no component bogus"},
		{name: "amd64 on a 32-bit host", host: good.withMachine("i686"), binary: okBin, want: ErrArch, text: "64-bit build host"},
		{name: "arm64 without emulation", host: good, binary: okBin, edit: func(o *Options) { o.Arch = "arm64" }, want: ErrArch, text: "qemu-user-static"},
		{name: "arm64 through binfmt", host: fakeHost{machine: "x86_64", binfmt: map[string]bool{"aarch64": true}, client: srv.Client()}, binary: okBin, edit: func(o *Options) { o.Arch = "arm64" }},
		{name: "missing keyring", host: good, binary: okBin, edit: func(o *Options) { o.Insecure = false; o.Keyring = "/nonexistent.gpg" }, text: "keyring /nonexistent.gpg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			o.Target = filepath.Join(t.TempDir(), "root")
			if tt.edit != nil {
				tt.edit(&o)
			}
			d := &Debootstrap{Runner: run.New(logging.Discard()), Log: logging.Discard(), Binary: tt.binary, Host: tt.host}
			err := d.Preflight(t.Context(), o)
			if tt.want == nil && tt.text == "" {
				if err != nil {
					t.Fatalf("Preflight() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Preflight() = nil, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Preflight() = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Preflight() = %q, want it to mention %q", err, tt.text)
			}
		})
	}
}

func TestPreflightReportsEverything(t *testing.T) {
	d := &Debootstrap{Runner: run.New(logging.Discard()), Log: logging.Discard(), Binary: "/nonexistent/debootstrap",
		Host: fakeHost{euid: 1000, machine: "i686", client: http.DefaultClient}}
	err := d.Preflight(t.Context(), Options{Suite: "bookworm", Arch: "amd64", Mirror: "ftp://x", Target: t.TempDir(), Insecure: true})
	for _, want := range []error{ErrNotRoot, ErrMissingTool, ErrArch, ErrMirror} {
		if !errors.Is(err, want) {
			t.Errorf("Preflight() = %v, want it to include %v", err, want)
		}
	}
}

func TestCheckMirrorFile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "dists/lenny"), 0o755)
	os.WriteFile(filepath.Join(dir, "dists/lenny/Release"), []byte("Codename: lenny\nArchitectures: alpha amd64 i386\nComponents: main contrib non-free\n"), 0o644)
	ctx := context.Background()
	o := Options{Mirror: "file://" + dir, Suite: "lenny", Arch: "amd64", Components: []string{"main", "non-free"}, Insecure: true}
	if err := CheckMirror(ctx, nil, o, time.Time{}, logging.Discard()); err != nil {
		t.Errorf("CheckMirror(lenny) = %v", err)
	}
	o.Suite, o.Components = "squeeze", []string{"main"}
	if err := CheckMirror(ctx, nil, o, time.Time{}, logging.Discard()); !errors.Is(err, ErrUnknownSuite) {
		t.Errorf("CheckMirror(squeeze) = %v, want ErrUnknownSuite", err)
	}
}

func TestRunFailureShowsLog(t *testing.T) {
	// A debootstrap that fails the way a broken package does: its own
	// log holds the reason.
	bin := fakeDebootstrap(t, `target="$(eval echo \${$(($#-1))})"
mkdir -p "$target/debootstrap"
echo "dpkg: error processing package foo (--configure):" > "$target/debootstrap/debootstrap.log"
echo " installed foo package post-installation script subprocess returned error exit status 1" >> "$target/debootstrap/debootstrap.log"
echo "I: Retrieving foo 1.0"
echo "W: Failure while configuring required packages." >&2
exit 1
`)
	d := &Debootstrap{Runner: run.New(logging.Discard()), Log: logging.Discard(), Binary: bin, Host: fakeHost{}}
	target := filepath.Join(t.TempDir(), "root")
	err := d.Run(t.Context(), Options{Suite: "bookworm", Target: target, Mirror: "http://m"}, progress.New(nil, false).Task("x", 0))
	if err == nil {
		t.Fatal("Run() = nil, want an error")
	}
	for _, want := range []string{"exit status 1", "post-installation script subprocess returned error", "Failure while configuring"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run() error %q does not mention %q", err, want)
		}
	}
}
