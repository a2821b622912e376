package stagecache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/krgimage/krgimage/internal/fsutil"
)

// maxBuilds bounds the builds the log keeps per recipe and output.
const maxBuilds = 20

// Build is one build in the store's log: the stages it stored or relied
// on. Prune --keep counts builds per recipe and output directory.
type Build struct {
	Recipe string    `json:"recipe"`
	Output string    `json:"output"`
	Time   time.Time `json:"time"`
	Keys   []string  `json:"keys"`
}

func (b Build) line() string { return b.Recipe + "\x00" + b.Output }

// RecordBuild adds a build to the log.
func (s *Store) RecordBuild(b Build) error {
	lk, err := fsutil.WaitLock(filepath.Join(s.dir, buildsName+".lock"))
	if err != nil {
		return err
	}
	defer lk.Unlock()
	builds, err := s.readBuilds()
	if err != nil {
		return err
	}
	b.Time = b.Time.UTC()
	builds = append(builds, b)
	return s.writeBuilds(trimBuilds(builds, maxBuilds))
}

func (s *Store) readBuilds() ([]Build, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, buildsName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var builds []Build
	if err := json.Unmarshal(b, &builds); err != nil {
		// The log only steers pruning: a damaged one starts afresh.
		s.log.Warn("the stage cache's build log is damaged; starting a new one", "err", err)
		return nil, nil
	}
	return builds, nil
}

func (s *Store) writeBuilds(builds []Build) error {
	b, err := json.MarshalIndent(builds, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(s.dir, buildsName), append(b, '\n'), 0o600)
}

// trimBuilds keeps the newest n builds of each recipe and output, oldest
// first.
func trimBuilds(builds []Build, n int) []Build {
	sort.SliceStable(builds, func(i, j int) bool { return builds[i].Time.Before(builds[j].Time) })
	seen := map[string]int{}
	var out []Build
	for i := len(builds) - 1; i >= 0; i-- {
		b := builds[i]
		if seen[b.line()] < n {
			seen[b.line()]++
			out = append(out, b)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// PruneOptions say what to keep.
type PruneOptions struct {
	// Keep, when positive, keeps only the entries used by the Keep most
	// recent builds of each recipe and output directory.
	Keep int
	// MaxSize, when positive, then removes the least recently used
	// entries until the rest fit in MaxSize bytes.
	MaxSize int64
}

// PruneResult says what Prune removed and what is left.
type PruneResult struct {
	Removed   []Entry
	Freed     int64
	Debris    int
	Kept      int
	KeptBytes int64
}

// Prune removes what interrupted builds left (temporary and discarded
// entries), then entries as o says. The store must have been opened with
// OpenExclusive: no build is using it.
func (s *Store) Prune(o PruneOptions) (PruneResult, error) {
	var res PruneResult
	if !s.exclusive {
		return res, errors.New("pruning needs the store opened with OpenExclusive")
	}
	// With the store alone, every temporary entry is debris.
	n, err := s.clearDebris(0)
	res.Debris = n
	if err != nil {
		return res, err
	}
	entries, err := s.List()
	if err != nil {
		return res, err
	}
	remove := func(e Entry) error {
		if err := os.RemoveAll(e.Dir); err != nil {
			return fmt.Errorf("removing cache entry %s: %w", Short(e.Key), err)
		}
		if err := s.ledger.Forget(e.Key); err != nil {
			return fmt.Errorf("removing cache entry %s: %w", Short(e.Key), err)
		}
		res.Removed = append(res.Removed, e)
		res.Freed += e.DiskBytes
		return nil
	}
	if o.Keep > 0 {
		builds, err := s.readBuilds()
		if err != nil {
			return res, err
		}
		builds = trimBuilds(builds, o.Keep)
		live := map[string]bool{}
		for _, b := range builds {
			for _, k := range b.Keys {
				live[k] = true
			}
		}
		var kept []Entry
		for _, e := range entries {
			if live[e.Key] {
				kept = append(kept, e)
			} else if err := remove(e); err != nil {
				return res, err
			}
		}
		entries = kept
		if err := s.writeBuilds(builds); err != nil {
			return res, err
		}
	}
	var total int64
	for _, e := range entries {
		total += e.DiskBytes
	}
	if o.MaxSize > 0 {
		// List sorts the most recently used first.
		for len(entries) > 0 && total > o.MaxSize {
			e := entries[len(entries)-1]
			if err := remove(e); err != nil {
				return res, err
			}
			total -= e.DiskBytes
			entries = entries[:len(entries)-1]
		}
	}
	res.Kept, res.KeptBytes = len(entries), total
	if err := s.forgetMissing(); err != nil {
		return res, err
	}
	return res, fsutil.SyncDir(s.dir)
}

// forgetMissing removes the ledger's records of entries that are gone: a
// build killed between discarding an entry and forgetting it leaves one.
func (s *Store) forgetMissing() error {
	names, err := s.ledger.Names()
	if err != nil {
		return err
	}
	for _, k := range names {
		if _, err := os.Lstat(filepath.Join(s.dir, k)); errors.Is(err, fs.ErrNotExist) {
			if err := s.ledger.Forget(k); err != nil {
				return err
			}
		}
	}
	return nil
}
