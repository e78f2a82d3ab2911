package broker

// Regression tests of issue 12's "one request kills the broker": each
// request here crashed the broker, made it send an answer no client can
// decode, or held its resources without bound, before the fix it names.

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hostileHeartbeat is a ConsumerGroupHeartbeat v1 of member in group.
func hostileHeartbeat(group, member string, epoch int32, instance *string) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch, req.InstanceID = group, member, epoch, instance
	req.RebalanceTimeoutMillis = 5000
	if epoch == 0 {
		req.SubscribedTopicNames = []string{"hostile"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	}
	return req
}

// A member that joined without an instance id and then leaves "for a
// moment" (epoch -2) naming an instance id dereferenced its nil instance id
// and took the whole process down. Kafka looks a leaving member up by its
// instance id when it gives one: unknown there, it is UNKNOWN_MEMBER_ID.
func TestHostileStaticLeaveOfDynamicMember(t *testing.T) {
	b := protoBroker(t, nil)
	c := protoDial(t, b)
	join := c.roundTrip(hostileHeartbeat("g", "m1", 0, nil), 1).(*kmsg.ConsumerGroupHeartbeatResponse)
	protoErr(t, "join", join.ErrorCode, nil)

	leave := c.roundTrip(hostileHeartbeat("g", "m1", -2, kmsg.StringPtr("i1")), 1).(*kmsg.ConsumerGroupHeartbeatResponse)
	protoErr(t, "static leave of a dynamic member", leave.ErrorCode, kerr.UnknownMemberID)

	// A static member joined under another member id is fenced, as in Kafka.
	join = c.roundTrip(hostileHeartbeat("g", "m2", 0, kmsg.StringPtr("i2")), 1).(*kmsg.ConsumerGroupHeartbeatResponse)
	protoErr(t, "static join", join.ErrorCode, nil)
	leave = c.roundTrip(hostileHeartbeat("g", "m1", -2, kmsg.StringPtr("i2")), 1).(*kmsg.ConsumerGroupHeartbeatResponse)
	protoErr(t, "static leave under another member id", leave.ErrorCode, kerr.FencedInstanceID)

	// The member that owns the instance leaves for a moment and comes back.
	leave = c.roundTrip(hostileHeartbeat("g", "m2", -2, kmsg.StringPtr("i2")), 1).(*kmsg.ConsumerGroupHeartbeatResponse)
	protoErr(t, "static leave", leave.ErrorCode, nil)
	join = c.roundTrip(hostileHeartbeat("g", "m3", 0, kmsg.StringPtr("i2")), 1).(*kmsg.ConsumerGroupHeartbeatResponse)
	protoErr(t, "static rejoin", join.ErrorCode, nil)

	d := c.roundTrip(&kmsg.ConsumerGroupDescribeRequest{Groups: []string{"g"}}, 0).(*kmsg.ConsumerGroupDescribeResponse)
	var members []string
	for _, m := range d.Groups[0].Members {
		members = append(members, m.MemberID)
	}
	if strings.Join(members, ",") != "m1,m3" && strings.Join(members, ",") != "m3,m1" {
		t.Fatalf("group members are %v, want m1 and m3", members)
	}
}
