package admin

import (
	"context"
	"encoding/json"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/storage"
)

// CleanerStatusTag is the tagged field (KIP-482) by which creek's tools ask
// a creek broker for its log cleaner's state: a DescribeLogDirs request (v2
// and later) carrying it gets, in each partition of a compacted topic, a
// JSON storage.CleanerStatus under the same tag. Other clients do not send
// it and get Kafka's answer unchanged; other brokers ignore it.
const CleanerStatusTag = 25458

// LogDir is a partition's size on disk and, on a creek broker when the topic
// is compacted, its log cleaner's state.
type LogDir struct {
	Size    int64
	Cleaner *storage.CleanerStatus
}

// CleanerStatuses describes the log dirs of a topic's partitions, asking
// each leader (leaders: broker id → its partitions) itself, since kgo's
// sharding of DescribeLogDirs would rebuild the request without the tag. A
// broker that does not answer leaves its partitions out.
func CleanerStatuses(ctx context.Context, cl *kgo.Client, topic string, leaders map[int32][]int32) map[int32]LogDir {
	out := map[int32]LogDir{}
	for leader, parts := range leaders {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = topic, parts
		req.Topics = append(req.Topics, rt)
		req.UnknownTags.Set(CleanerStatusTag, nil)
		resp, err := cl.Broker(int(leader)).Request(ctx, req)
		if err != nil {
			continue
		}
		for _, dir := range resp.(*kmsg.DescribeLogDirsResponse).Dirs {
			for _, dt := range dir.Topics {
				if dt.Topic != topic {
					continue
				}
				for _, dp := range dt.Partitions {
					d := LogDir{Size: dp.Size}
					dp.UnknownTags.Each(func(tag uint32, v []byte) {
						var st storage.CleanerStatus
						if tag == CleanerStatusTag && json.Unmarshal(v, &st) == nil {
							d.Cleaner = &st
						}
					})
					out[dp.Partition] = d
				}
			}
		}
	}
	return out
}
