package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krgimage/krgimage/bootstrap"
	"github.com/krgimage/krgimage/bootstrap/bootstraptest"
)

func TestLockCommand(t *testing.T) {
	repo := bootstraptest.NewRepo(t, bootstraptest.Spec{Suite: "trixie", Debs: []bootstraptest.Deb{
		{Name: "base", Version: "1", Priority: "required"},
		{Name: "apt", Version: "2.9", Depends: "base"},
	}})
	mirror := repo.Serve(t)
	recipe := writeRecipe(t, "suite: trixie\nvariant: minbase\nkeyring: "+repo.Keyring+"\n")
	cache := t.TempDir()

	code, stdout, stderr := execute(t, "lock", recipe, "--mirror", mirror, "--cache-dir", cache)
	want := strings.TrimSuffix(recipe, ".yaml") + ".lock"
	if code != ExitOK || strings.TrimSpace(stdout) != want {
		t.Fatalf("krgimage lock: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	l, err := bootstrap.ReadLockfile(want)
	if err != nil || len(l.Packages) != 2 || l.Packages[0].Name != "apt" {
		t.Errorf("lockfile: %+v, %v", l, err)
	}
	// The build plan now says the packages are pinned.
	code, stdout, _ = execute(t, "plan", recipe, "--mirror", mirror)
	if code != ExitOK || !strings.Contains(stdout, "exactly the 2 packages "+want+" pins") {
		t.Errorf("plan after lock (exit %d):\n%s", code, stdout)
	}

	out := filepath.Join(t.TempDir(), "elsewhere.lock")
	if code, _, stderr := execute(t, "lock", recipe, "--mirror", mirror, "--cache-dir", cache, "-o", out); code != ExitOK {
		t.Errorf("lock -o: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}

	// Failures are the usual exit 1 with the reason.
	bad := writeRecipe(t, "suite: trixie\nvariant: minbase\nkeyring: "+repo.Keyring+"\nbootstrap: {include: [ghost]}\n")
	code, _, stderr = execute(t, "lock", bad, "--mirror", mirror, "--cache-dir", cache)
	if code != ExitFailure || !strings.Contains(stderr, "ghost (include)") {
		t.Errorf("lock with a missing package: exit %d, %s", code, stderr)
	}
	if code, _, _ := execute(t, "lock", "a.yaml", "b.yaml"); code != ExitUsage {
		t.Errorf("lock with two recipes: exit %d, want %d", code, ExitUsage)
	}
}
