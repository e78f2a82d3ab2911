package broker

import (
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/storage"
)

// errorCodes maps the errors of the cluster and storage packages to Kafka
// error codes; anything else is a storage failure.
var errorCodes = []struct {
	err  error
	code *kerr.Error
}{
	{cluster.ErrTopicExists, kerr.TopicAlreadyExists},
	{cluster.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{cluster.ErrInvalidTopic, kerr.InvalidTopicException},
	{cluster.ErrInvalidPartitions, kerr.InvalidPartitions},
	{cluster.ErrInvalidReplication, kerr.InvalidReplicationFactor},
	{cluster.ErrInvalidConfig, kerr.InvalidConfig},
	{cluster.ErrDeleteDisabled, kerr.TopicDeletionDisabled},
	{storage.ErrCorruptBatch, kerr.CorruptMessage},
	{storage.ErrUnsupportedFormat, kerr.UnsupportedVersion},
	{storage.ErrUnsupportedCompression, kerr.UnsupportedCompressionType},
	{storage.ErrBatchTooLarge, kerr.MessageTooLarge},
	{storage.ErrInvalidRecord, kerr.InvalidRecord},
	{storage.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{storage.ErrInvalidEpoch, kerr.InvalidProducerEpoch},
	{storage.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{storage.ErrInvalidTimestamp, kerr.InvalidTimestamp},
	{storage.ErrClosed, kerr.UnknownTopicOrPartition}, // the topic was deleted meanwhile
}

func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			return m.code.Code
		}
	}
	return kerr.KafkaStorageError.Code
}

// errorMessage is the message sent beside an error code, for the APIs that
// have one, shortened to maxErrorMessage (it may quote a client's names).
// It does not repeat the code's own name and description, which clients
// print beside it (the Java client's exceptions carry the message alone).
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	var ke *kerr.Error
	if errors.As(err, &ke) {
		if rest, ok := strings.CutPrefix(s, ke.Error()+": "); ok {
			s = rest
		}
	}
	s = shorten(s, maxErrorMessage)
	return &s
}
