package stagecache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/krgimage/krgimage/internal/cachedir"
	"github.com/krgimage/krgimage/internal/fsutil"
	"github.com/krgimage/krgimage/snapshot"
)

// Errors callers branch on.
var (
	// ErrCorrupt: an entry failed its checksum or its manifest, or its
	// files are missing. It has been removed.
	ErrCorrupt = errors.New("corrupt cache entry")
	// ErrBusy: a running build uses the store, which Prune needs alone.
	ErrBusy = errors.New("the stage cache is in use by a running build")
)

const (
	metaName    = "meta.json"
	lockName    = "lock"
	buildsName  = "builds.json"
	ledgerName  = "ledger"
	commitLock  = "commit.lock"
	tmpPrefix   = ".tmp-"
	trashPrefix = ".trash-"
)

// Meta describes an entry: the stage it holds and its archive.
type Meta struct {
	Key string `json:"key"`
	// Step names the stage (its pipeline step).
	Step   string `json:"step"`
	Recipe string `json:"recipe"`
	// Final marks the finished, normalized root of a build, which later
	// stages must not build on.
	Final   bool      `json:"final,omitempty"`
	Version string    `json:"version,omitempty"`
	Created time.Time `json:"created"`
	// Archive is the snapshot's file name in the entry's directory.
	Archive     string               `json:"archive"`
	SHA256      string               `json:"sha256"`
	Size        int64                `json:"size"`
	Entries     int                  `json:"entries"`
	Bytes       int64                `json:"bytes"`
	Compression snapshot.Compression `json:"compression"`
	Level       int                  `json:"level"`
	// State is what the pipeline learnt while building the stage and
	// needs again when it restores it.
	State json.RawMessage `json:"state,omitempty"`
}

// Entry is a complete entry of the store.
type Entry struct {
	Meta
	Dir string
	// LastUsed is when a build last stored, restored or relied on it.
	LastUsed time.Time
	// DiskBytes is what its files take.
	DiskBytes int64
}

// ArchivePath is the entry's snapshot.
func (e *Entry) ArchivePath() string { return filepath.Join(e.Dir, e.Archive) }

// Short is the key's first 12 digits, as listings show it.
func Short(key string) string {
	if len(key) > 12 {
		return key[:12]
	}
	return key
}

// Store is a directory of entries.
type Store struct {
	dir string
	log *slog.Logger
	lk  *fsutil.Lock
	// ledger vouches for each entry's meta.json, and through it for its
	// archive.
	ledger *cachedir.Ledger
	now    func() time.Time
	// exclusive: no build uses the store (OpenExclusive).
	exclusive bool
}

// Open opens the store at dir, creating it, for a build or a listing. It
// holds a shared lock until Close: builds share the store, Prune waits for
// them to finish.
func Open(dir string, log *slog.Logger) (*Store, error) {
	return open(dir, log, false)
}

// OpenExclusive opens the store for Prune. It fails with ErrBusy while a
// build uses it.
func OpenExclusive(dir string, log *slog.Logger) (*Store, error) {
	return open(dir, log, true)
}

func open(dir string, log *slog.Logger, exclusive bool) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The entries hold whole image roots, /etc/shadow included: the
	// store is private, in a place nobody else can swap.
	dir, err := cachedir.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the stage cache: %w", err)
	}
	ledger, err := cachedir.OpenLedger(filepath.Join(dir, ledgerName))
	if err != nil {
		return nil, fmt.Errorf("opening the stage cache: %w", err)
	}
	// Builds share the store; Prune takes it alone, and does not wait.
	lock := fsutil.WaitShared
	if exclusive {
		lock = fsutil.TryLock
	}
	lk, err := lock(filepath.Join(dir, lockName))
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, ErrBusy
	}
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, log: log, lk: lk, ledger: ledger, now: time.Now, exclusive: exclusive}
	if !exclusive {
		if _, err := s.clearDebris(staleAfter); err != nil {
			log.Warn("could not remove what a killed build left in the stage cache", "err", err)
		}
	}
	return s, nil
}

// staleAfter is how long a temporary entry goes unwritten before a build
// takes it for one a killed build left: storing a root takes seconds,
// during which its archive's mtime moves on.
const staleAfter = time.Hour

// clearDebris removes what killed builds left: the trash of discarded
// entries, and the temporary entries nothing wrote to for tmpAge (another
// build may be writing a younger one) and returns how many.
func (s *Store) clearDebris(tmpAge time.Duration) (int, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, de := range des {
		p := filepath.Join(s.dir, de.Name())
		switch {
		case strings.HasPrefix(de.Name(), trashPrefix):
		case strings.HasPrefix(de.Name(), tmpPrefix) && (tmpAge == 0 || s.now().Sub(newestMtime(p)) > tmpAge):
		default:
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return n, err
		}
		s.log.Info("removed what a killed build left in the stage cache", "path", p)
		n++
	}
	return n, nil
}

// newestMtime is the latest mtime of dir and the files in it.
func newestMtime(dir string) time.Time {
	var t time.Time
	if fi, err := os.Stat(dir); err == nil {
		t = fi.ModTime()
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if fi, err := de.Info(); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}

// Close releases the store's lock.
func (s *Store) Close() error { return s.lk.Unlock() }

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func validKey(key string) bool {
	if len(key) != 64 {
		return false
	}
	_, err := hex.DecodeString(key)
	return err == nil && strings.ToLower(key) == key
}

func archiveName(c snapshot.Compression) string {
	switch c {
	case snapshot.Gzip:
		return "root.tar.gz"
	case snapshot.XZ:
		return "root.tar.xz"
	case snapshot.None:
		return "root.tar"
	}
	return "root.tar.zst"
}

// Lookup returns the entry for key, or nil when there is none. An entry
// whose meta.json is unreadable, or is not what the ledger recorded, is
// removed and reported as absent.
func (s *Store) Lookup(key string) (*Entry, error) {
	return s.lookup(key, false)
}

// lookup is Lookup, by a caller that holds the commit lock when locked
// says so.
func (s *Store) lookup(key string, locked bool) (*Entry, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("invalid cache key %q", key)
	}
	dir := filepath.Join(s.dir, key)
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, metaName))
	var m Meta
	if err == nil {
		// meta.json holds the archive's SHA-256, which Restore and
		// Export check it against: whoever could rewrite the entry, its
		// sidecar included, could not have written the ledger.
		if err = s.ledger.Verify(key, b); errors.Is(err, cachedir.ErrUnrecorded) && !locked {
			// A build may be between its rename and its record.
			err = s.committing(func() error { return s.ledger.Verify(key, b) })
		}
		if err != nil {
			s.log.Warn("removing a cache entry the cache's ledger does not vouch for", "key", Short(key), "err", err)
			s.Discard(key)
			return nil, nil
		}
		err = json.Unmarshal(b, &m)
	}
	if err == nil && (m.Key != key || m.Archive == "" || m.Archive != filepath.Base(m.Archive) || len(m.SHA256) != 64) {
		err = errors.New("its meta.json does not describe it")
	}
	if err != nil {
		s.log.Warn("removing a damaged cache entry", "key", Short(key), "err", err)
		s.Discard(key)
		return nil, nil
	}
	return &Entry{Meta: m, Dir: dir, LastUsed: fi.ModTime()}, nil
}

// tempDir is where a new entry for key is written before its rename.
func (s *Store) tempDir(key string) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("invalid cache key %q", key)
	}
	return os.MkdirTemp(s.dir, tmpPrefix+Short(key)+"-")
}

// Put snapshots the tree at root into the entry m.Key. When another build
// stored that key meanwhile, its entry is kept and returned.
func (s *Store) Put(ctx context.Context, m Meta, root string, o snapshot.Options) (_ *Entry, err error) {
	tmp, err := s.tempDir(m.Key)
	if err != nil {
		return nil, err
	}
	defer removeUnlessCommitted(tmp, &err)
	name := archiveName(o.Compression)
	res, err := snapshot.WriteFile(ctx, root, filepath.Join(tmp, name), o)
	if err != nil {
		return nil, err
	}
	m.Archive, m.SHA256, m.Size, m.Entries, m.Bytes, m.Compression, m.Level = name, res.SHA256, res.Size, res.Entries, res.Bytes, res.Compression, res.Level
	return s.commit(tmp, m)
}

// PutArchive makes the snapshot at archive, whose SHA-256 is m.SHA256, the
// entry m.Key: a hard link when the store is on the same filesystem, else a
// copy, checked.
func (s *Store) PutArchive(ctx context.Context, m Meta, archive string) (_ *Entry, err error) {
	tmp, err := s.tempDir(m.Key)
	if err != nil {
		return nil, err
	}
	defer removeUnlessCommitted(tmp, &err)
	m.Archive = archiveName(m.Compression)
	// The archive was just written: a link of it needs no check.
	if err := linkOrCopy(ctx, archive, filepath.Join(tmp, m.Archive), m.SHA256, false); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(archive); err == nil {
		m.Size = fi.Size()
	}
	if err := fsutil.WriteFileAtomic(snapshot.SidecarPath(filepath.Join(tmp, m.Archive)), []byte(m.SHA256+"  "+m.Archive+"\n"), 0o644); err != nil {
		return nil, err
	}
	return s.commit(tmp, m)
}

func removeUnlessCommitted(tmp string, err *error) {
	if *err != nil {
		os.RemoveAll(tmp)
	}
}

// commit renames a complete temporary entry into place.
func (s *Store) commit(tmp string, m Meta) (*Entry, error) {
	m.Created = s.now().UTC()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	if err := fsutil.WriteFileAtomic(filepath.Join(tmp, metaName), b, 0o644); err != nil {
		return nil, err
	}
	final := filepath.Join(s.dir, m.Key)
	var e *Entry
	err = s.committing(func() (err error) {
		e, err = s.install(tmp, final, m, b)
		return err
	})
	return e, err
}

// committing runs f holding the lock that makes a rename into place and
// its ledger record one step for other builds.
func (s *Store) committing(f func() error) error {
	lk, err := fsutil.WaitLock(filepath.Join(s.dir, commitLock))
	if err != nil {
		return err
	}
	defer lk.Unlock()
	return f()
}

// install renames the entry tmp, whose meta.json is b, into place and
// records it. The caller holds the commit lock.
func (s *Store) install(tmp, final string, m Meta, b []byte) (*Entry, error) {
	err := os.Rename(tmp, final)
	if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
		// Another build stored the same stage first: the key says both
		// are the same root. Its entry, unless the ledger does not vouch
		// for it; that one is removed, and this one takes its place.
		s.log.Debug("the stage was stored by another build meanwhile", "key", Short(m.Key))
		if e, lerr := s.lookup(m.Key, true); e != nil || lerr != nil {
			os.RemoveAll(tmp)
			return e, lerr
		}
		err = os.Rename(tmp, final)
	}
	if err != nil {
		return nil, err
	}
	if err := fsutil.SyncDir(s.dir); err != nil {
		return nil, err
	}
	if err := s.ledger.Record(m.Key, b); err != nil {
		s.Discard(m.Key)
		return nil, err
	}
	return &Entry{Meta: m, Dir: final, LastUsed: m.Created}, nil
}

// Restore extracts the entry into root (missing or empty), checking it
// against the checksum its meta.json (which the ledger vouches for) gives
// and its manifest on the way. A corrupt entry is removed and the error
// wraps ErrCorrupt; root is then left as it was.
func (s *Store) Restore(ctx context.Context, e *Entry, root string, o snapshot.RestoreOptions) error {
	archive, done, err := s.trustedArchive(e)
	if errors.Is(err, ErrCorrupt) {
		s.Discard(e.Key)
	}
	if err != nil {
		return err
	}
	defer done()
	_, err = snapshot.Restore(ctx, archive, root, o)
	if err == nil {
		s.Touch(e.Key)
		return nil
	}
	if corrupt(err) {
		s.Discard(e.Key)
		return fmt.Errorf("%w %s: %w", ErrCorrupt, Short(e.Key), err)
	}
	return err
}

// trustedArchive links the entry's archive into a private directory, next
// to a sidecar with e.SHA256, and returns its path there: whoever could
// write the entry could otherwise swap the archive, or its sidecar, while
// it is being restored. The link is a file nobody else can change, so its
// content is what the restore checks.
func (s *Store) trustedArchive(e *Entry) (string, func(), error) {
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix+"restore-"+Short(e.Key)+"-")
	if err != nil {
		return "", nil, err
	}
	done := func() { os.RemoveAll(tmp) }
	p := filepath.Join(tmp, e.Archive)
	err = sidecarAgrees(e)
	if err == nil {
		err = os.Link(e.ArchivePath(), p)
	}
	if err == nil {
		err = cachedir.CheckFile(p)
	}
	if err != nil {
		err = fmt.Errorf("%w %s: %w", ErrCorrupt, Short(e.Key), err)
	} else {
		err = fsutil.WriteFileAtomic(snapshot.SidecarPath(p), []byte(e.SHA256+"  "+e.Archive+"\n"), 0o600)
	}
	if err != nil {
		done()
		return "", nil, err
	}
	return p, done, nil
}

// sidecarAgrees checks that the entry's sidecar names the SHA-256 its
// meta.json does: the two are written together, and disagree only when
// something damaged the entry.
func sidecarAgrees(e *Entry) error {
	b, err := os.ReadFile(snapshot.SidecarPath(e.ArchivePath()))
	if err != nil {
		return err
	}
	if f := strings.Fields(string(b)); len(f) == 0 || f[0] != e.SHA256 {
		return fmt.Errorf("%s does not name sha256 %s", snapshot.SidecarPath(e.ArchivePath()), e.SHA256)
	}
	return nil
}

func corrupt(err error) bool {
	for _, target := range []error{snapshot.ErrChecksum, snapshot.ErrCorrupt, snapshot.ErrUnsafePath, snapshot.ErrMismatch} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// Export puts the entry's archive at dst, with its sidecar: a hard link
// when possible, else a copy. The archive is checked against its SHA-256
// first; a corrupt entry is removed and the error wraps ErrCorrupt.
func (s *Store) Export(ctx context.Context, e *Entry, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".cache-"+randomSuffix())
	if err := linkOrCopy(ctx, e.ArchivePath(), tmp, e.SHA256, true); err != nil {
		os.Remove(tmp)
		if errors.Is(err, ErrCorrupt) || errors.Is(err, fs.ErrNotExist) {
			s.Discard(e.Key)
			return fmt.Errorf("%w %s: %w", ErrCorrupt, Short(e.Key), err)
		}
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	s.Touch(e.Key)
	return fsutil.WriteFileAtomic(snapshot.SidecarPath(dst), []byte(e.SHA256+"  "+filepath.Base(dst)+"\n"), 0o644)
}

// linkOrCopy links src to dst (which must not exist), or copies it across
// filesystems, and checks that the result has the SHA-256 want: always
// after a copy, after a link when checkLink says src may be damaged.
func linkOrCopy(ctx context.Context, src, dst, want string, checkLink bool) error {
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := copyFile(ctx, src, dst); err != nil {
			return err
		}
	} else if !checkLink {
		return nil
	} else if err := cachedir.CheckFile(dst); err != nil {
		// Someone else could change it once checked.
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	got, err := fileSHA256(ctx, dst)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: %s has sha256 %s, want %s", ErrCorrupt, src, got, want)
	}
	return nil
}

func copyFile(ctx context.Context, src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, fsutil.ContextReader(ctx, in)); err != nil {
		return err
	}
	return out.Sync()
}

func fileSHA256(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fsutil.ContextReader(ctx, f)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Touch records that a build relied on the entries, for Prune's
// least-recently-used order.
func (s *Store) Touch(keys ...string) {
	now := s.now()
	for _, k := range keys {
		if validKey(k) {
			_ = os.Chtimes(filepath.Join(s.dir, k), now, now)
		}
	}
}

// Discard removes an entry. It is first renamed out of the way, so no
// build can look it up half-removed.
func (s *Store) Discard(key string) {
	if !validKey(key) {
		return
	}
	trash := filepath.Join(s.dir, trashPrefix+Short(key)+"-"+randomSuffix())
	if err := os.Rename(filepath.Join(s.dir, key), trash); err != nil {
		return
	}
	if err := s.ledger.Forget(key); err != nil {
		s.log.Warn("removing a discarded cache entry's record", "key", Short(key), "err", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		s.log.Warn("removing a discarded cache entry", "path", trash, "err", err)
	}
}

// List returns every complete entry, most recently used first.
func (s *Store) List() ([]Entry, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		if !de.IsDir() || !validKey(de.Name()) {
			continue
		}
		e, err := s.Lookup(de.Name())
		if err != nil {
			return nil, err
		}
		if e == nil {
			continue
		}
		e.DiskBytes = diskBytes(e.Dir)
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LastUsed.Equal(out[j].LastUsed) {
			return out[i].LastUsed.After(out[j].LastUsed)
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

func diskBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
