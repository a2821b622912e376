package boottest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

func TestCleanupsUnwindInReverseAfterCtrlC(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var ran []string
	var c cleanups
	for _, name := range []string{"netns", "scratch", "nfs", "servers"} {
		c.push("undoing "+name, func(ctx context.Context) error {
			if ctx.Err() != nil {
				t.Errorf("%s ran under a cancelled context: %v", name, ctx.Err())
			}
			ran = append(ran, name)
			if name == "nfs" {
				return errors.New("still busy")
			}
			return nil
		})
	}
	cancel()
	var log bytes.Buffer
	c.unwind(ctx, slog.New(slog.NewTextHandler(&log, nil)))
	if want := []string{"servers", "nfs", "scratch", "netns"}; !reflect.DeepEqual(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
	if !strings.Contains(log.String(), `msg="undoing nfs" err="still busy"`) {
		t.Errorf("the failed cleanup is not logged: %s", log.String())
	}
	if strings.Count(log.String(), "msg=") != 1 {
		t.Errorf("only the failed cleanup should be logged: %s", log.String())
	}
	ran = nil
	c.unwind(ctx, slog.New(slog.NewTextHandler(&log, nil)))
	if len(ran) != 0 {
		t.Errorf("a second unwind ran %v again", ran)
	}
}
