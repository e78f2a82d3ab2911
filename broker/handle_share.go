package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/share"
	"github.com/creek-pipeline/creek/internal/storage"
)

// Share groups (KIP-932) are served by internal/share. The versions start
// at 1: version 0 was Kafka 4.0's early access, which no released client
// speaks.

func init() {
	register(kmsg.ShareGroupHeartbeat, 1, func(b *Broker, r *request, req *kmsg.ShareGroupHeartbeatRequest) kmsg.Response {
		if req.GroupID != "" && b.groups.Has(req.GroupID) { // the share coordinator refuses an empty id
			resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			resp.ErrorMessage = kmsg.StringPtr("group " + req.GroupID + " is a consumer group, not a share group")
			return resp
		}
		return b.shares.Heartbeat(share.Client(r.client()), req)
	})
	register(kmsg.ShareGroupDescribe, 1, func(b *Broker, r *request, req *kmsg.ShareGroupDescribeRequest) kmsg.Response {
		return b.shares.Describe(req)
	})
	registerAsync(kmsg.ShareFetch, 1, func(b *Broker, r *request, req *kmsg.ShareFetchRequest) (kmsg.Response, func()) {
		return b.shares.Fetch(r.conn, req)
	})
	register(kmsg.ShareAcknowledge, 1, func(b *Broker, r *request, req *kmsg.ShareAcknowledgeRequest) kmsg.Response {
		return b.shares.Acknowledge(r.conn, req)
	})
	register(kmsg.DescribeShareGroupOffsets, 0, func(b *Broker, r *request, req *kmsg.DescribeShareGroupOffsetsRequest) kmsg.Response {
		return b.shares.DescribeOffsets(req)
	})
	register(kmsg.AlterShareGroupOffsets, 0, func(b *Broker, r *request, req *kmsg.AlterShareGroupOffsetsRequest) kmsg.Response {
		if b.groups.Has(req.GroupID) {
			resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			resp.ErrorMessage = kmsg.StringPtr("group " + req.GroupID + " is a consumer group, not a share group")
			return resp
		}
		return b.shares.AlterOffsets(req)
	})
	register(kmsg.DeleteShareGroupOffsets, 0, func(b *Broker, r *request, req *kmsg.DeleteShareGroupOffsetsRequest) kmsg.Response {
		return b.shares.DeleteOffsets(req)
	})
}

// shareConfig reads the share coordinator's settings.
func shareConfig(v *config.BrokerValues) share.Config {
	ms := func(name string) time.Duration { return time.Duration(v.Int64(name)) * time.Millisecond }
	return share.Config{
		SessionTimeout:    ms("group.share.session.timeout.ms"),
		HeartbeatInterval: ms("group.share.heartbeat.interval.ms"),
		LockDuration:      ms("group.share.record.lock.duration.ms"),
		DeliveryLimit:     int16(v.Int64("group.share.delivery.count.limit")),
		MaxRecordLocks:    v.Int64("group.share.partition.max.record.locks"),
		MaxSize:           int(v.Int64("group.share.max.size")),
	}
}

// Log gives the share coordinator a partition's log.
func (d topicDirectory) Log(topic string, partition int32) (*storage.Log, bool) {
	t, ok := d.c.Topic(topic)
	if !ok {
		return nil, false
	}
	l := t.Partition(partition)
	return l, l != nil
}
