package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	redact := func(s string) string { return strings.ReplaceAll(s, "s3cr3t", "${TOKEN}") }
	for _, format := range []Format{Text, JSON} {
		t.Run(string(format), func(t *testing.T) {
			var b bytes.Buffer
			base, err := New(&b, format, true)
			if err != nil {
				t.Fatal(err)
			}
			log := slog.New(Redact(base.Handler(), redact)).With("step", "write /etc/s3cr3t")
			log.Info("wrote /etc/s3cr3t", "path", "/etc/s3cr3t", "err", errors.New("open /etc/s3cr3t"),
				"n", 4, slog.Group("g", "cmd", "apt-get install s3cr3t"))
			log.WithGroup("sub").Debug("line", "v", []string{"s3cr3t"})
			got := b.String()
			if strings.Contains(got, "s3cr3t") {
				t.Errorf("log shows the value:\n%s", got)
			}
			for _, want := range []string{"/etc/${TOKEN}", "apt-get install ${TOKEN}", "4"} {
				if !strings.Contains(got, want) {
					t.Errorf("log lacks %q:\n%s", want, got)
				}
			}
		})
	}
}
