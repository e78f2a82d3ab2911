package broker

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkFetchManyPartitions is a consumer's poll of 1000 partitions, one
// of which has a new record, with and without an incremental fetch
// session: the broker's time per fetch, request decoding and answer
// encoding included (the client's part is in the figure too).
func BenchmarkFetchManyPartitions(b *testing.B) {
	for _, sessions := range []bool{true, false} {
		b.Run(fmt.Sprintf("sessions=%v", sessions), func(b *testing.B) {
			br := protoBroker(b, nil)
			id := protoCreateTopic(b, br, "many", 1000, nil)
			cl := protoClient(b, br, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			c := protoDial(b, br)
			offsets := map[int32]int64{}
			for p := range int32(1000) {
				offsets[p] = 0
			}
			fetch := func(session, epoch int32, offsets map[int32]int64) *kmsg.FetchResponse {
				req := protoSessionFetch("many", id, session, epoch, offsets)
				req.MaxWaitMillis, req.IsolationLevel = 0, 0 // as franz-go's consumers by default
				return c.roundTrip(req, 18).(*kmsg.FetchResponse)
			}
			var session, epoch int32
			if sessions {
				session, epoch = fetch(0, 0, offsets).SessionID, 1
			} else {
				epoch = -1
			}
			// The consumer's positions; in a session it sends only the
			// partition that moved.
			position := map[int32]int64{}
			for p := range int32(1000) {
				position[p] = 0
			}
			b.ResetTimer()
			for i := range b.N {
				p := int32(i % 1000)
				b.StopTimer()
				produceTo(b, cl, "many", p, 1)
				b.StartTimer()
				resp := fetch(session, epoch, offsets)
				if resp.ErrorCode != 0 {
					b.Fatal(resp.ErrorCode)
				}
				if sessions {
					epoch = nextEpoch(epoch)
				}
				moved := map[int32]int64{}
				for _, t := range resp.Topics {
					for _, sp := range t.Partitions {
						if len(sp.RecordBatches) > 0 {
							position[sp.Partition] = sp.HighWatermark
							moved[sp.Partition] = sp.HighWatermark
						}
					}
				}
				if sessions {
					offsets = moved
				} else {
					offsets = position
				}
			}
		})
	}
}
