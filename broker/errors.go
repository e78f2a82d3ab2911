package broker

import (
	"errors"

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
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := shorten(err.Error(), maxErrorMessage)
	return &s
}
