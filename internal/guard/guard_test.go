package guard

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRunLogsAPanicAndReturns(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	ran := false
	Func(logger, "test timer", func() {
		ran = true
		var s []int
		_ = s[len(s)+1-ranOnce()]
	})()
	if !ran {
		t.Fatal("fn did not run")
	}
	for _, want := range []string{"level=ERROR", "work=\"test timer\"", "index out of range", "guard.TestRunLogsAPanicAndReturns"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	Run(logger, "calm", func() {})
	if buf.Len() != 0 {
		t.Errorf("a call without a panic logged %q", buf.String())
	}
}

func ranOnce() int { return 0 }
