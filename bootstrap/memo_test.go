package bootstrap

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/krgimage/krgimage/bootstrap/bootstraptest"
)

// TestMemoLedger: a remembered resolution is used only while the cache's
// ledger vouches for it. One rewritten in place, as a valid lockfile that
// pins something else, is not, nor one the ledger has no record of.
func TestMemoLedger(t *testing.T) {
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{Debs: fixtureDebs()})
	mirror := repo.Serve(t)
	cache := t.TempDir()
	o := testOptions(mirror, repo.Keyring, "")
	lock := func() (*Lockfile, *logRecorder) {
		t.Helper()
		rec := &logRecorder{}
		n, _, _ := testNative(t, cache, rec)
		l, err := n.Lock(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		return l, rec
	}
	genuine, _ := lock()
	memos, _ := filepath.Glob(filepath.Join(cache, "packages", "resolved", "*.lock"))
	if len(memos) != 1 {
		t.Fatalf("memos: %v", memos)
	}
	memo := memos[0]
	if _, rec := lock(); !rec.has("package set unchanged since the last build") {
		t.Fatalf("the memo was not used: %v", rec.recs)
	}

	// Rewritten: another version of a package, and a valid lockfile.
	forged := *genuine
	forged.Packages = slices.Clone(genuine.Packages)
	forged.Packages[0].Version += "+forged"
	if err := forged.Write(memo); err != nil {
		t.Fatal(err)
	}
	got, rec := lock()
	if rec.has("package set unchanged since the last build") || !rec.has("not using the remembered package set") {
		t.Errorf("the forged memo was not refused: %v", rec.recs)
	}
	if !slices.Equal(got.Packages, genuine.Packages) {
		t.Errorf("resolved %v\nwant %v", got.Packages, genuine.Packages)
	}
	// Resolving anew remembered the genuine set again.
	if _, rec := lock(); !rec.has("package set unchanged since the last build") {
		t.Errorf("the memo was not renewed: %v", rec.recs)
	}

	// Unrecorded, as an older krgimage left it.
	if err := os.RemoveAll(filepath.Join(filepath.Dir(memo), "ledger")); err != nil {
		t.Fatal(err)
	}
	if _, rec := lock(); rec.has("package set unchanged since the last build") || !rec.has("not in the cache's ledger") {
		t.Errorf("an unrecorded memo was used: %v", rec.recs)
	}
	if _, rec := lock(); !rec.has("package set unchanged since the last build") {
		t.Errorf("the memo was not recorded anew: %v", rec.recs)
	}
}
