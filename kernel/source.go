package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/internal/run"
)

// Sources names what a kernel is built from.
type Sources struct {
	// Source is a tarball (path or URL) or a directory.
	Source string
	// SHA256 must match Source when set; required for URLs.
	SHA256 string
	// Linux is the Linux tree Kerrighed patches (tarball or directory).
	Linux string
	// Config is a .config file, copied into the Linux tree (or the source
	// tree when there is no separate Linux tree).
	Config string
}

// Tree is a prepared source tree.
type Tree struct {
	// Dir is where configure and make run.
	Dir string
	// Linux is the Linux tree passed as --with-kernel ("" when none).
	Linux string
	// Key identifies the inputs: the same sources and config reuse the
	// same tree, so make only redoes what changed.
	Key string
	// Reused reports that the tree was already unpacked.
	Reused bool
}

// Fetcher downloads and unpacks kernel sources.
type Fetcher struct {
	HTTP   *http.Client
	Runner *run.Runner
	Log    *slog.Logger
	// Downloads is where URL sources are kept, by sha256.
	Downloads string
}

// IsURL reports whether a source is downloaded.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "ftp://")
}

// Key hashes the inputs of a build: tarball contents, directory paths and
// the configuration.
func (f *Fetcher) Key(ctx context.Context, s Sources) (string, error) {
	h := sha256.New()
	for _, part := range []struct{ name, v string }{{"source", s.Source}, {"linux", s.Linux}} {
		if part.v == "" {
			continue
		}
		id, err := f.identity(ctx, part.v, s.SHA256, part.name == "source")
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", part.name, part.v, err)
		}
		fmt.Fprintf(h, "%s=%s\n", part.name, id)
	}
	if s.Config != "" {
		b, err := os.ReadFile(s.Config)
		if err != nil {
			return "", fmt.Errorf("%w: config: %v", ErrSource, err)
		}
		fmt.Fprintf(h, "config=%x\n", sha256.Sum256(b))
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// identity is a tarball's sha256 or a directory's absolute path.
func (f *Fetcher) identity(ctx context.Context, src, want string, checked bool) (string, error) {
	if IsURL(src) {
		if _, err := f.download(ctx, src, want); err != nil {
			return "", err
		}
		return want, nil
	}
	fi, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrSource, err)
	}
	if fi.IsDir() {
		abs, err := filepath.Abs(src)
		return "dir:" + abs, err
	}
	sum, err := fileSHA256(src)
	if err != nil {
		return "", err
	}
	if checked && want != "" && sum != want {
		return "", fmt.Errorf("%w: %s has sha256 %s, the recipe says %s", ErrChecksum, src, sum, want)
	}
	return sum, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrSource, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// download fetches url into the download cache, named by its sha256, and
// returns the file. A cached file is checked again before use.
func (f *Fetcher) download(ctx context.Context, url, want string) (string, error) {
	if want == "" {
		return "", fmt.Errorf("%w: a downloaded source needs a sha256", ErrChecksum)
	}
	dst := filepath.Join(f.Downloads, want)
	if sum, err := fileSHA256(dst); err == nil && sum == want {
		return dst, nil
	}
	if err := os.MkdirAll(f.Downloads, 0o755); err != nil {
		return "", err
	}
	f.Log.Info("downloading", "url", url)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := f.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrSource, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: GET %s: %s", ErrSource, url, resp.Status)
	}
	h := sha256.New()
	err = fsutil.WriteAtomic(dst, 0o644, func(out *os.File) error {
		_, err := io.Copy(io.MultiWriter(out, h), resp.Body)
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return fmt.Errorf("%w: %s has sha256 %s, the recipe says %s", ErrChecksum, url, got, want)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return dst, nil
}

// local returns a source's file or directory on this machine.
func (f *Fetcher) local(ctx context.Context, src, want string) (string, error) {
	if IsURL(src) {
		return f.download(ctx, src, want)
	}
	return src, nil
}

// Prepare makes the source trees available under base/KEY: tarballs are
// unpacked once; directories are used in place when inPlace is set (a host
// build works in the user's tree, as a developer would) and copied
// otherwise (a build inside the image needs its own copy).
func (f *Fetcher) Prepare(ctx context.Context, s Sources, base string, inPlace bool) (*Tree, error) {
	key, err := f.Key(ctx, s)
	if err != nil {
		return nil, err
	}
	t := &Tree{Key: key}
	dir := filepath.Join(base, key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if t.Dir, t.Reused, err = f.tree(ctx, s.Source, s.SHA256, filepath.Join(dir, "src"), inPlace); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if s.Linux != "" {
		if t.Linux, _, err = f.tree(ctx, s.Linux, "", filepath.Join(dir, "linux"), inPlace); err != nil {
			return nil, fmt.Errorf("linux: %w", err)
		}
	}
	if s.Config != "" {
		cfgDir := t.Dir
		if t.Linux != "" {
			cfgDir = t.Linux
		}
		if err := installConfig(s.Config, filepath.Join(cfgDir, ".config")); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// installConfig copies the configuration unless it is already there, so
// that an unchanged config does not make make rebuild everything.
func installConfig(src, dst string) error {
	want, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("%w: config: %v", ErrSource, err)
	}
	if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, want) {
		return nil
	}
	return fsutil.WriteFileAtomic(dst, want, 0o644)
}

// tree returns the directory to build in for one source.
func (f *Fetcher) tree(ctx context.Context, src, want, dst string, inPlace bool) (dir string, reused bool, err error) {
	p, err := f.local(ctx, src, want)
	if err != nil {
		return "", false, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", false, fmt.Errorf("%w: %v", ErrSource, err)
	}
	if fi.IsDir() {
		if inPlace {
			return p, true, nil
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return "", false, err
		}
		// cp keeps timestamps, so make still sees what is up to date.
		if err := f.Runner.Run(ctx, run.Cmd{Path: "cp", Args: []string{"-a", "--", p + "/.", dst}, Quiet: true}); err != nil {
			return "", false, err
		}
		return dst, false, nil
	}
	marker := dst + ".unpacked"
	if _, err := os.Stat(marker); err == nil {
		return topDir(dst), true, nil
	}
	tmp := dst + ".tmp"
	if err := fsutil.RemoveAll(tmp); err != nil {
		return "", false, err
	}
	if err := fsutil.RemoveAll(dst); err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", false, err
	}
	f.Log.Info("unpacking", "path", p)
	if err := f.Runner.Run(ctx, run.Cmd{Path: "tar", Args: []string{"-xf", p, "-C", tmp, "--no-same-owner"}, Quiet: true}); err != nil {
		return "", false, fmt.Errorf("%w: unpacking %s: %v", ErrSource, p, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", false, err
	}
	if err := os.WriteFile(marker, []byte(src+"\n"), 0o644); err != nil {
		return "", false, err
	}
	return topDir(dst), false, nil
}

// topDir descends into the single directory a tarball usually holds
// (kerrighed-3.0.0/).
func topDir(dir string) string {
	entries, err := os.ReadDir(dir)
	if err == nil && len(entries) == 1 && entries[0].IsDir() {
		return filepath.Join(dir, entries[0].Name())
	}
	return dir
}
