package bootstrap

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/krgimage/krgimage/bootstrap/bootstraptest"
)

func TestNativeRun(t *testing.T) {
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{Debs: fixtureDebs()})
	mirror := repo.Serve(t)
	cache := t.TempDir()
	n, ex, priv := testNative(t, cache, nil)
	target := filepath.Join(t.TempDir(), "root")
	res, err := n.Run(t.Context(), testOptions(mirror, repo.Keyring, target), task())
	if err != nil {
		t.Fatal(err)
	}
	if got := packageNames(res.Packages); !slices.Equal(got, minbaseNames) {
		t.Errorf("installed %q\nwant %q", got, minbaseNames)
	}
	if res.Stats.Files != len(minbaseNames)+1 || res.Stats.Downloaded == 0 || res.Stats.Reused != 0 {
		t.Errorf("cold stats = %+v, want every package and the index downloaded", res.Stats)
	}

	// dpkg runs: ldconfig, the core with --force-depends (base-passwd
	// first), then one run per Pre-Depends layer, then the audit.
	var argvs []string
	for _, c := range ex.calls {
		var short []string
		for _, a := range c {
			short = append(short, strings.TrimSuffix(filepath.Base(a), ".deb"))
		}
		argvs = append(argvs, strings.Join(short, " "))
	}
	want := []string{
		"ldconfig",
		"dpkg --force-unsafe-io --install --force-depends base-passwd base-files dpkg libc6 mawk libgcc-s1 dash libzstd1",
		"dpkg --force-unsafe-io --install --force-overwrite --force-confold libapt-pkg6.0 gpgv debian-archive-keyring apt libext2fs2 logsave passwd usr-is-merged",
		"dpkg --force-unsafe-io --install --force-overwrite --force-confold e2fsprogs",
		"dpkg --audit",
	}
	if !slices.Equal(argvs, want) {
		t.Errorf("commands in the target:\n%s\nwant\n%s", strings.Join(argvs, "\n"), strings.Join(want, "\n"))
	}

	// The core was extracted, merged into /usr as bookworm has it;
	// documentation was left to dpkg.
	for path, want := range map[string]string{
		"usr/bin/dash":                          "#!/bin/sh\nexit 0\n",
		"usr/share/base-passwd/passwd.master":   "root:*:0:0:root:/root:/bin/sh\n",
		"etc/fstab":                             "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n",
		"etc/apt/sources.list":                  "deb " + mirror + " bookworm main\n",
		"var/lib/dpkg/status":                   "",
		"usr/sbin/start-stop-daemon":            "real ssd\n",
		"usr/lib/x86_64-linux-gnu/libzstd.so.1": "ELF zstd\n",
	} {
		b, err := os.ReadFile(filepath.Join(target, path))
		if err != nil || string(b) != want {
			t.Errorf("/%s = %q, %v; want %q", path, b, err, want)
		}
	}
	for link, want := range map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64", "usr/bin/sh": "dash", "dev/stdin": "/proc/self/fd/0"} {
		if got, err := os.Readlink(filepath.Join(target, link)); err != nil || got != want {
			t.Errorf("/%s -> %q (%v), want -> %q", link, got, err, want)
		}
	}
	for _, gone := range []string{"usr/share/doc/base-files/README", debDir, "usr/sbin/start-stop-daemon.REAL", "usr/bin/perl"} {
		if _, err := os.Lstat(filepath.Join(target, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("/%s exists after the bootstrap", gone)
		}
	}
	if _, ok := priv.nodes["dev/null"]; !ok {
		t.Errorf("no /dev/null made: %v", priv.nodes)
	}

	// A rebuild downloads nothing: packages come from the cache, and the
	// resolution from the memo of the unchanged Release.
	n2, _, _ := testNative(t, cache, nil)
	res2, err := n2.Run(t.Context(), testOptions(mirror, repo.Keyring, filepath.Join(t.TempDir(), "root")), task())
	if err != nil {
		t.Fatal(err)
	}
	if res2.Stats.Downloaded != 0 || res2.Stats.Files != 0 || res2.Stats.Reused != len(minbaseNames) {
		t.Errorf("warm stats = %+v, want nothing downloaded", res2.Stats)
	}
}

func TestNativeFailures(t *testing.T) {
	other, err := bootstraptest.NewKey("someone else", time.Now().Add(-time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		spec  func(*bootstraptest.Spec)
		edit  func(t *testing.T, r *bootstraptest.Repo, o *Options)
		fetch bool // fails only when the packages are fetched
		want  error
		text  string
	}{
		{
			name: "tampered Packages",
			edit: func(t *testing.T, r *bootstraptest.Repo, o *Options) {
				appendFile(t, filepath.Join(r.Dists(), "main/binary-amd64/Packages.gz"), "x")
				appendFile(t, filepath.Join(r.Dists(), "main/binary-amd64/Packages.xz"), "x")
			},
			want: ErrChecksum, text: "main/binary-amd64/Packages.gz",
		},
		{
			name: "tampered package",
			edit: func(t *testing.T, r *bootstraptest.Repo, o *Options) {
				appendFile(t, filepath.Join(r.Dir, "pool/main/g/gpgv/gpgv_2.2.40_amd64.deb"), "tampered")
			},
			fetch: true, want: ErrChecksum, text: "gpgv 2.2.40",
		},
		{
			name: "unknown key",
			edit: func(t *testing.T, r *bootstraptest.Repo, o *Options) {
				o.Keyring = filepath.Join(t.TempDir(), "other.gpg")
				if err := bootstraptest.WriteKeyring(o.Keyring, true, other); err != nil {
					t.Fatal(err)
				}
			},
			want: ErrUnknownKey, text: "none of which is in the keyring",
		},
		{
			name: "unsigned",
			spec: func(s *bootstraptest.Spec) { s.Unsigned = true },
			want: ErrSignature, text: "insecure: true",
		},
		{
			name: "tampered InRelease",
			edit: func(t *testing.T, r *bootstraptest.Repo, o *Options) {
				p := filepath.Join(r.Dists(), "InRelease")
				b, _ := os.ReadFile(p)
				os.WriteFile(p, []byte(strings.Replace(string(b), "Codename: bookworm", "Codename: bookwurm", 1)), 0o644)
			},
			want: ErrSignature, text: "InRelease",
		},
		{
			name: "missing package",
			edit: func(t *testing.T, r *bootstraptest.Repo, o *Options) { o.Include = []string{"no-such-package"} },
			want: ErrNoPackage, text: "no-such-package (include)",
		},
		{
			name: "unsatisfiable",
			spec: func(s *bootstraptest.Spec) {
				s.Debs = append(s.Debs, bootstraptest.Deb{Name: "tool", Version: "1", Depends: "libtool2 (>= 2) | libtool3"},
					bootstraptest.Deb{Name: "libtool2", Version: "1.5"})
			},
			edit: func(t *testing.T, r *bootstraptest.Repo, o *Options) { o.Include = []string{"tool"} },
			want: ErrUnsatisfiable, text: "tool 1 needs libtool2 (>= 2) | libtool3, but libtool2 1.5 does not satisfy (>= 2); libtool3 is not in the index and nothing provides it (chain: tool (include))",
		},
		{
			name: "package gone from the mirror",
			edit: func(t *testing.T, r *bootstraptest.Repo, o *Options) {
				os.Remove(filepath.Join(r.Dir, "pool/main/a/apt/apt_2.6.1_amd64.deb"))
			},
			fetch: true, want: os.ErrNotExist, text: "apt 2.6.1 is not on the mirror",
		},
		{
			name:  "weak checksum in a current suite",
			spec:  func(s *bootstraptest.Spec) { s.WeakSums = []string{"gpgv"} },
			fetch: true, want: ErrChecksum, text: "gpgv 2.2.40 (pool/main/g/gpgv/gpgv_2.2.40_amd64.deb) has only a checksum of the broken MD5",
		},
		{
			name: "expired key",
			spec: func(s *bootstraptest.Spec) {
				s.Signer = expiredKey(t)
				s.SignTime = time.Now().Add(-47 * time.Hour)
			},
			want: ErrKeyExpired, text: "archived: true",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := bootstraptest.Spec{Debs: fixtureDebs()}
			if tt.spec != nil {
				tt.spec(&spec)
			}
			repo := bootstraptest.NewRepo(t, spec)
			o := testOptions(repo.Serve(t), repo.Keyring, filepath.Join(t.TempDir(), "root"))
			if tt.edit != nil {
				tt.edit(t, repo, &o)
			}
			n, _, _ := testNative(t, t.TempDir(), nil)
			var err error
			if tt.fetch {
				_, err = n.Run(t.Context(), o, task())
			} else {
				_, err = n.Lock(t.Context(), o)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
		})
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

// expiredKey was valid for a day, two days ago.
func expiredKey(t *testing.T) *openpgp.Entity {
	t.Helper()
	k, err := bootstraptest.NewKey("expired archive key", time.Now().Add(-48*time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNativeArchivedSuite(t *testing.T) {
	// lenny's layout: Release and Release.gpg, Packages.gz and .bz2, three
	// checksums in the Release, an expired key, one package indexed with
	// an MD5sum only, data.tar.gz and a dpkg too old for unsafe-io.
	debs := fixtureDebs()
	for i := range debs {
		if debs[i].Name == "dpkg" {
			debs[i].Version = "1.14.31"
			debs[i].PreDepends = "libc6"
		}
		if debs[i].Name == "libc6" || debs[i].Name == "libgcc-s1" {
			debs[i].Depends = strings.ReplaceAll(debs[i].Depends, " (>= 2.35)", "")
		}
		debs[i].Compression = ""
	}
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{Suite: "lenny", Style: bootstraptest.Lenny, Debs: debs,
		Signer: expiredKey(t), SignTime: time.Now().Add(-47 * time.Hour), WeakSums: []string{"gpgv"}})
	// Served as an old mirror might: the .gz index is gone, the .bz2 one
	// is there.
	os.Remove(filepath.Join(repo.Dists(), "main/binary-amd64/Packages.gz"))
	mirror := repo.Serve(t)
	rec := &logRecorder{}
	n, ex, _ := testNative(t, t.TempDir(), rec)
	o := testOptions(mirror, repo.Keyring, filepath.Join(t.TempDir(), "root"))
	o.Suite = "lenny"
	if _, err := n.Lock(t.Context(), o); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("without archived: true, Lock = %v, want ErrKeyExpired", err)
	}
	o.Archived = true
	res, err := n.Run(t.Context(), o, task())
	if err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(slices.Clone(minbaseNames), func(s string) bool { return s == "usr-is-merged" })
	if got := packageNames(res.Packages); !slices.Equal(got, want) {
		t.Errorf("installed %q, want %q", got, want)
	}
	for _, msg := range []string{"signed by an expired key", "only a weak checksum protects this file path=pool/main/g/gpgv"} {
		if !rec.has(msg) {
			t.Errorf("the log does not say %q:\n%s", msg, strings.Join(rec.recs, "\n"))
		}
	}
	if fi, err := os.Lstat(filepath.Join(o.Target, "bin")); err != nil || !fi.IsDir() {
		t.Errorf("lenny's /bin is not a directory: %v %v", fi, err)
	}
	if got := strings.Join(ex.calls[1][:3], " "); got != "dpkg --install --force-depends" {
		t.Errorf("lenny's dpkg run starts %q: its dpkg has no --force-unsafe-io", got)
	}
}

func TestNativeStaleRelease(t *testing.T) {
	// A copy of a suite whose Release has expired: a stale mirror, or a
	// replayed Release, unless the recipe says the suite is archived.
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{Debs: fixtureDebs(), ValidUntil: time.Now().Add(-24 * time.Hour)})
	mirror := repo.Serve(t)
	n, _, _ := testNative(t, t.TempDir(), nil)
	o := testOptions(mirror, repo.Keyring, "")
	_, err := n.Lock(t.Context(), o)
	if !errors.Is(err, ErrReleaseExpired) || !strings.Contains(err.Error(), "Release of bookworm expired on") || !strings.Contains(err.Error(), "archived: true") {
		t.Fatalf("Lock() of an expired Release = %v, want ErrReleaseExpired saying archived: true", err)
	}
	o.Archived = true
	if _, err := n.Lock(t.Context(), o); err != nil {
		t.Fatalf("an archived suite past its Valid-Until: %v", err)
	}
}

func TestNativeLockfile(t *testing.T) {
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{Debs: fixtureDebs()})
	mirror := repo.Serve(t)
	n, _, _ := testNative(t, t.TempDir(), nil)
	o := testOptions(mirror, repo.Keyring, filepath.Join(t.TempDir(), "root"))
	lock, err := n.Lock(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "recipe.lock")
	if err := lock.Write(path); err != nil {
		t.Fatal(err)
	}
	lock, err = ReadLockfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if lock.Release.Codename != "bookworm" || !lock.Release.Date.Equal(bootstraptest.Epoch) || len(lock.Packages) != len(minbaseNames) {
		t.Errorf("lockfile = %+v", lock)
	}

	// The suite moves on: gpgv 2.2.41 replaces 2.2.40 in the index, while
	// the pool still has the old file.
	debs := fixtureDebs()
	for i := range debs {
		if debs[i].Name == "gpgv" {
			debs[i].Version = "2.2.41"
		}
	}
	repo2, err := bootstraptest.Write(t.TempDir(), bootstraptest.Spec{Debs: debs, Signer: repo.Key})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"InRelease", "main/binary-amd64/Packages.gz", "main/binary-amd64/Packages.xz"} {
		b, _ := os.ReadFile(filepath.Join(repo2.Dists(), f))
		os.WriteFile(filepath.Join(repo.Dists(), f), b, 0o644)
	}
	b, _ := os.ReadFile(filepath.Join(repo2.Dir, "pool/main/g/gpgv/gpgv_2.2.41_amd64.deb"))
	os.WriteFile(filepath.Join(repo.Dir, "pool/main/g/gpgv/gpgv_2.2.41_amd64.deb"), b, 0o644)

	unlocked, err := n.Lock(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if v := versionOf(unlocked.Packages, "gpgv"); v != "2.2.41" {
		t.Fatalf("the moved suite resolves gpgv %s, want 2.2.41", v)
	}
	o.Lock = lock
	res, err := n.Run(t.Context(), o, task())
	if err != nil {
		t.Fatal(err)
	}
	if v := versionOf(res.Packages, "gpgv"); v != "2.2.40" {
		t.Errorf("the locked build installed gpgv %s, want the pinned 2.2.40", v)
	}

	// The old file leaves the mirror: the build says what to do.
	os.Remove(filepath.Join(repo.Dir, "pool/main/g/gpgv/gpgv_2.2.40_amd64.deb"))
	n2, _, _ := testNative(t, t.TempDir(), nil)
	o.Target = filepath.Join(t.TempDir(), "root")
	_, err = n2.Run(t.Context(), o, task())
	if !errors.Is(err, ErrLockMismatch) || !strings.Contains(err.Error(), "snapshot of the archive from 2024-01-02") || !strings.Contains(err.Error(), "gpgv 2.2.40") {
		t.Errorf("locked build without the pinned file: %v", err)
	}

	// A lockfile made for another selection is refused.
	o.Variant = "buildd"
	if _, err := n2.Run(t.Context(), o, task()); !errors.Is(err, ErrLockMismatch) || !strings.Contains(err.Error(), `variant "minbase"`) {
		t.Errorf("lockfile for another variant: %v", err)
	}
}

func versionOf(ps []LockedPackage, name string) string {
	for _, p := range ps {
		if p.Name == name {
			return p.Version
		}
	}
	return ""
}

func TestNativeInstallFailure(t *testing.T) {
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{Debs: fixtureDebs()})
	n, ex, _ := testNative(t, t.TempDir(), nil)
	ex.fail = "dpkg --force-unsafe-io --install --force-overwrite"
	target := filepath.Join(t.TempDir(), "root")
	_, err := n.Run(t.Context(), testOptions(repo.Serve(t), repo.Keyring, target), task())
	if err == nil || !strings.Contains(err.Error(), "installing 8 packages (libapt-pkg6.0...)") {
		t.Fatalf("Run = %v, want the failing dpkg run named", err)
	}
	// Whatever failed, the target keeps no trace of the bootstrap's
	// scaffolding.
	if got, err := os.ReadFile(filepath.Join(target, "usr/sbin/start-stop-daemon")); err != nil || string(got) != "real ssd\n" {
		t.Errorf("start-stop-daemon after a failure = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(target, debDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the staged packages are left in the target: %v", err)
	}

	ex.fail, ex.audit = "", "The following packages are only half configured:\n foo\n"
	_, err = n.Run(t.Context(), testOptions(repo.Serve(t), repo.Keyring, filepath.Join(t.TempDir(), "root")), task())
	if err == nil || !strings.Contains(err.Error(), "dpkg --audit reports") {
		t.Errorf("Run with a dpkg --audit complaint = %v", err)
	}
}

func TestNativePreflight(t *testing.T) {
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{Debs: fixtureDebs()})
	mirror := repo.Serve(t)
	nonEmpty := t.TempDir()
	os.WriteFile(filepath.Join(nonEmpty, "x"), nil, 0o644)
	tests := []struct {
		name string
		host fakeHost
		edit func(*Options)
		want error
	}{
		{name: "ok", host: fakeHost{machine: "x86_64"}},
		{name: "not root", host: fakeHost{euid: 1000, machine: "x86_64"}, want: ErrNotRoot},
		{name: "target not empty", host: fakeHost{machine: "x86_64"}, edit: func(o *Options) { o.Target = nonEmpty }, want: ErrTargetNotEmpty},
		{name: "foreign", host: fakeHost{machine: "x86_64"}, edit: func(o *Options) { o.Foreign = true }, want: ErrArch},
		{name: "arm64 host", host: fakeHost{machine: "aarch64"}, want: ErrArch},
		{name: "unknown suite", host: fakeHost{machine: "x86_64"}, edit: func(o *Options) { o.Suite = "trixie" }, want: ErrUnknownSuite},
		{name: "lock for another variant", host: fakeHost{machine: "x86_64"}, edit: func(o *Options) {
			o.Lock = &Lockfile{Format: LockFormat, Suite: "bookworm", Architecture: "amd64", Variant: "buildd", Components: []string{"main"}}
		}, want: ErrLockMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _, _ := testNative(t, t.TempDir(), nil)
			h := tt.host
			h.client = http.DefaultClient
			n.Host = h
			o := testOptions(mirror, repo.Keyring, filepath.Join(t.TempDir(), "root"))
			if tt.edit != nil {
				tt.edit(&o)
			}
			err := n.Preflight(t.Context(), o)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Preflight() = %v, want %v", err, tt.want)
			}
		})
	}
}
