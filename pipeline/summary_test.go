package pipeline

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/krgimage/krgimage/internal/golden"
)

func readFixture(t *testing.T, name string) *Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/report", name))
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// TestReportGolden prints the nightly report of current.json against
// previous.json: a libc6 security update, tzdata downgraded, nfs-common
// added and openssh-server removed by a packages change, a new export.
func TestReportGolden(t *testing.T) {
	prev, cur := readFixture(t, "previous.json"), readFixture(t, "current.json")
	for _, tt := range []struct {
		golden string
		write  func(*bytes.Buffer)
	}{
		{"summary.golden", func(b *bytes.Buffer) { cur.WriteText(b) }},
		{"diff.golden", func(b *bytes.Buffer) { CompareReports(prev, cur).WriteText(b) }},
		{"same.golden", func(b *bytes.Buffer) { CompareReports(prev, prev).WriteText(b) }},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			var b bytes.Buffer
			tt.write(&b)
			golden.Check(t, filepath.Join("testdata/report", tt.golden), b.Bytes())
		})
	}
}

func TestCompareReportsPackages(t *testing.T) {
	d := CompareReports(readFixture(t, "previous.json"), readFixture(t, "current.json"))
	if len(d.Upgraded) != 1 || d.Upgraded[0].Name != "libc6" {
		t.Errorf("upgraded = %+v", d.Upgraded)
	}
	if len(d.Downgraded) != 1 || d.Downgraded[0].Name != "tzdata" {
		t.Errorf("downgraded = %+v", d.Downgraded)
	}
	if len(d.Added) != 1 || d.Added[0].Name != "nfs-common" || len(d.Removed) != 1 || d.Removed[0].Name != "openssh-server" {
		t.Errorf("added %+v, removed %+v", d.Added, d.Removed)
	}
	if len(d.OutputsChanged) != 2 || len(d.OutputsAdded) != 1 || len(d.OutputsRemoved) != 0 {
		t.Errorf("outputs: changed %+v, added %+v, removed %+v", d.OutputsChanged, d.OutputsAdded, d.OutputsRemoved)
	}
	if d.Empty() || !CompareReports(readFixture(t, "current.json"), readFixture(t, "current.json")).Empty() {
		t.Error("Empty() is wrong")
	}
}
