package config

import (
	"strings"
	"testing"
)

// queued.max.request.bytes takes -1 (no limit, the default) or a number of
// bytes; 0 would let no request in.
func TestQueuedMaxRequestBytes(t *testing.T) {
	if b, err := NewBrokerValues(nil); err != nil || b.Int64("queued.max.request.bytes") != -1 {
		t.Fatalf("default: %v, %v; want -1", b.Int64("queued.max.request.bytes"), err)
	}
	for value, want := range map[string]string{"-1": "", "1048576": "", "0": "use -1 for no limit", "-2": "at least -1"} {
		_, err := NewBrokerValues(map[string]string{"queued.max.request.bytes": value})
		switch {
		case want == "" && err != nil:
			t.Errorf("queued.max.request.bytes=%s: %v", value, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("queued.max.request.bytes=%s: error %v, want one saying %q", value, err, want)
		}
	}
}
