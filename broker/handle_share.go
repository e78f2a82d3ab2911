package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Share groups (KIP-932) are served by internal/share through group.Front,
// which keeps one name space for every kind of group. The versions start
// at 1: version 0 was Kafka 4.0's early access, which no released client
// speaks.

func init() {
	register(kmsg.ShareGroupHeartbeat, 1, func(b *Broker, r *request, req *kmsg.ShareGroupHeartbeatRequest) kmsg.Response {
		return b.front.ShareHeartbeat(r.client(), req)
	})
	register(kmsg.ShareGroupDescribe, 1, func(b *Broker, r *request, req *kmsg.ShareGroupDescribeRequest) kmsg.Response {
		return b.front.ShareDescribe(req)
	})
	registerAsync(kmsg.ShareFetch, 1, func(b *Broker, r *request, req *kmsg.ShareFetchRequest) (kmsg.Response, func()) {
		return b.front.ShareFetch(r.conn, req)
	})
	register(kmsg.ShareAcknowledge, 1, func(b *Broker, r *request, req *kmsg.ShareAcknowledgeRequest) kmsg.Response {
		return b.front.ShareAcknowledge(r.conn, req)
	})
	register(kmsg.DescribeShareGroupOffsets, 0, func(b *Broker, r *request, req *kmsg.DescribeShareGroupOffsetsRequest) kmsg.Response {
		return b.front.DescribeShareOffsets(req)
	})
	register(kmsg.AlterShareGroupOffsets, 0, func(b *Broker, r *request, req *kmsg.AlterShareGroupOffsetsRequest) kmsg.Response {
		return b.front.AlterShareOffsets(req)
	})
	register(kmsg.DeleteShareGroupOffsets, 0, func(b *Broker, r *request, req *kmsg.DeleteShareGroupOffsetsRequest) kmsg.Response {
		return b.front.DeleteShareOffsets(req)
	})
}
