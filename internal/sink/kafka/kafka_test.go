package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// What the sink produces again and what it gives up on at once.
func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("unable to initialize a producer ID due to request failures: %w", io.EOF), true}, // a broker died under the request
		{kerr.NotLeaderForPartition, true},
		{kerr.NotEnoughReplicas, true},
		{kerr.OutOfOrderSequenceNumber, true},
		{kerr.UnknownProducerID, true},
		{kerr.MessageTooLarge, false},
		{kerr.TopicAuthorizationFailed, false},
		{kerr.InvalidRecord, false},
		{fmt.Errorf("produce: %w", context.Canceled), false},
		{kgo.ErrClientClosed, false},
	} {
		if got := transient(c.err); got != c.want {
			t.Errorf("transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if transient(errors.Join(kerr.MessageTooLarge)) {
		t.Error("a wrapped MessageTooLarge is retried")
	}
}
