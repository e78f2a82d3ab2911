package broker

// Regression tests of issue 12's "one request kills the broker": each
// request here crashed the broker, made it send an answer no client can
// decode, or held its resources without bound, before the fix it names.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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

// hostileBroker starts a broker whose log the test reads.
func hostileBroker(t *testing.T, settings map[string]string) (*Broker, *robustLogs) {
	t.Helper()
	logs := &robustLogs{}
	b, err := Start(context.Background(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Settings: settings,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, logs
}

// hostileWithAPI serves key with a: the test seam for handlers that panic,
// since no real request is left that does. The real one is restored when
// the test ends. Every connection reads the table, so call it before the
// test starts its broker: the broker's cleanup, registered later, then
// runs first and waits for its connections.
func hostileWithAPI(t *testing.T, key kmsg.Key, a api) {
	real := apis[key.Int16()]
	apis[key.Int16()] = a
	t.Cleanup(func() { apis[key.Int16()] = real })
}

func stringFinish(string) func() { return nil }

// A panic while serving one request, in the handler or in its deferred
// finish step, closes that client's connection with an error log line that
// names the API, version, client address and id, and has the stack; the
// broker goes on serving every other connection, including one opened
// before the panic.
func TestHostilePanicClosesOnlyItsConnection(t *testing.T) {
	hostileWithAPI(t, kmsg.DescribeCluster, api{min: 0, max: 1, handle: func(_ *Broker, _ *request, req kmsg.Request) (kmsg.Response, func()) {
		var instance *string // a nil dereference: the kind of bug a hostile request finds
		if req.GetVersion() >= 0 {
			return kmsg.NewPtrDescribeClusterResponse(), stringFinish(*instance)
		}
		return nil, nil
	}})
	hostileWithAPI(t, kmsg.DescribeLogDirs, api{min: 0, max: 4, handle: func(_ *Broker, _ *request, req kmsg.Request) (kmsg.Response, func()) {
		return req.ResponseKind(), func() { panic("finish step failed") }
	}})

	b, logs := hostileBroker(t, nil)
	protoCreateTopic(t, b, "hostile-good", 1, nil)
	good := startRobustGoodClient(t, b.Addr(), "hostile-good")
	protoWait(t, "the well-behaved client to get going", func() bool { return good.consumed.Load() >= 20 })
	bystander := protoDial(t, b)
	bystander.roundTrip(kmsg.NewPtrApiVersionsRequest(), 3)

	for _, tc := range []struct {
		req     kmsg.Request
		version int16
		step    string
	}{
		{kmsg.NewPtrDescribeClusterRequest(), 1, "handling"},
		{kmsg.NewPtrDescribeLogDirsRequest(), 4, "finishing"},
	} {
		name := kmsg.NameForKey(tc.req.Key())
		c := protoDial(t, b)
		c.send(tc.req, tc.version)
		robustExpectClosed(t, c.nc)
		local := c.nc.LocalAddr().String()
		var line string
		protoWait(t, "the panic's log line", func() bool {
			lines := logs.lines("client=" + local)
			if len(lines) > 0 {
				line = lines[0]
			}
			return line != ""
		})
		for _, want := range []string{"level=ERROR", "panic while serving a request", "api=" + name, fmt.Sprintf("version=%d", tc.version),
			"step=" + tc.step, "client_id=proto-test", "goroutine ", "broker.TestHostilePanicClosesOnlyItsConnection"} {
			if !strings.Contains(line, want) {
				t.Errorf("%s: the log line lacks %q:\n%s", name, want, line)
			}
		}
		if n := len(logs.lines("client=" + local)); n != 1 {
			t.Errorf("%s: %d log lines for the connection, want 1", name, n)
		}
		// The bystander's connection still answers.
		resp := bystander.roundTrip(kmsg.NewPtrMetadataRequest(), 12).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 {
			t.Fatalf("after the %s panic the broker answers metadata with %d brokers", name, len(resp.Brokers))
		}
	}
	seen := good.consumed.Load()
	protoWait(t, "the well-behaved client to go on", func() bool { return good.consumed.Load() >= seen+20 })
	good.finish(t)
}

// hostileConnCount is how many client connections the broker serves.
func hostileConnCount(b *Broker) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// A client that sends fetches and never reads the answers used to hold its
// connection, goroutines and queued answers forever: the writer blocked in
// a write with no deadline. Now a write that makes no progress for
// socket.write.timeout.ms closes that connection, with a log line.
func TestHostileClientThatNeverReadsIsClosed(t *testing.T) {
	b, logs := hostileBroker(t, map[string]string{"socket.write.timeout.ms": "500"})
	protoCreateTopic(t, b, "hostile-big", 1, nil)
	cl := protoClient(t, b, kgo.DefaultProduceTopic("hostile-big"), kgo.ProducerBatchMaxBytes(1<<20))
	var recs []*kgo.Record
	for i := 0; i < 8; i++ {
		recs = append(recs, &kgo.Record{Value: bytes.Repeat([]byte{byte('a' + i)}, 100<<10)})
	}
	if err := cl.ProduceSync(protoCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	before := hostileConnCount(b)

	c := protoDial(t, b)
	c.nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	local := c.nc.LocalAddr().String()
	go func() { // the writes block once the broker stops reading; that is fine
		f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("never-reads"))
		for i := int32(1); i <= 200; i++ {
			req := protoFetchReq("hostile-big", [16]byte{}, 0, 0)
			req.SetVersion(11)
			if _, err := c.nc.Write(f.AppendRequest(nil, req, i)); err != nil {
				return
			}
		}
	}()
	protoWait(t, "the broker to close the connection that does not read", func() bool {
		return len(logs.lines("client="+local)) > 0 && hostileConnCount(b) == before
	})
	line := logs.lines("client=" + local)[0]
	if !strings.Contains(line, "has not read its answers for 500ms") || !strings.Contains(line, "client_id=never-reads") {
		t.Errorf("the log line does not say why:\n%s", line)
	}
	// Everyone else is still served.
	if got := protoConsume(t, b, "hostile-big", 8); len(got) != 8 {
		t.Fatalf("consumed %d records after the stalled client, want 8", len(got))
	}
}

// A length prefix is only a claim: the broker used to allocate a buffer of
// that size (up to socket.request.max.bytes, 100 MiB) as soon as it read
// the prefix, so a few connections sending four bytes each could take
// gigabytes. The buffer now grows only as the bytes arrive.
func TestHostileLengthPrefixAloneAllocatesLittle(t *testing.T) {
	b, _ := hostileBroker(t, nil)
	before := hostileConnCount(b)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	const conns = 16
	for i := 0; i < conns; i++ {
		c := protoDial(t, b)
		frame := binary.BigEndian.AppendUint32(nil, 100<<20-1) // a Produce "of 100 MiB"...
		frame = append(frame, 0, 0, 0, 9, 0, 0, 0, 1)          // ...whose header is all that comes
		if _, err := c.nc.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	protoWait(t, "the connections to be accepted", func() bool { return hostileConnCount(b) == before+conns })
	time.Sleep(200 * time.Millisecond) // let every reader get to its body
	runtime.ReadMemStats(&ms)
	if grew := int64(ms.HeapInuse) - int64(base); grew > 256<<20 {
		t.Fatalf("%d connections that each sent a 100 MiB length prefix and 8 bytes grew the heap by %d MiB", conns, grew>>20)
	}
}

// Requests other than Produce are lists of small items, each decoding to a
// struct many times its size: a 100 MiB Metadata request of empty topic
// names decodes to billions of bytes. They are held to
// request.max.bytes.non.produce; Produce is not.
func TestHostileLargeNonProduceRequestIsRefused(t *testing.T) {
	b, logs := hostileBroker(t, map[string]string{"request.max.bytes.non.produce": "1048576"})
	protoCreateTopic(t, b, "hostile-p", 1, nil)

	c := protoDial(t, b)
	req := kmsg.NewPtrMetadataRequest()
	for i := 0; i < 300_000; i++ { // 4 bytes each at v0: 1.2 MB
		req.Topics = append(req.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr("ab")})
	}
	req.SetVersion(0)
	// The broker closes the connection once it has read the size, so the
	// write may fail part way with a broken pipe: that is the refusal.
	c.nc.Write(c.fmt.AppendRequest(nil, req, 1))
	robustExpectClosed(t, c.nc)
	protoWait(t, "the log line", func() bool { return len(logs.lines("client="+c.nc.LocalAddr().String())) == 1 })
	if line := logs.lines("client=" + c.nc.LocalAddr().String())[0]; !strings.Contains(line, "Metadata request of 1200024 bytes is larger than 1048576 (request.max.bytes.non.produce)") {
		t.Errorf("the log line does not say why:\n%s", line)
	}

	// A Produce of 2 MB goes through (and is stored).
	c = protoDial(t, b)
	var values []string
	for i := 0; i < 20; i++ {
		values = append(values, strings.Repeat("x", 100<<10))
	}
	sp := protoProduceRaw(t, c, 7, 1, "hostile-p", [16]byte{}, 0, protoBatch(t, protoBatchSpec{values: values}))
	protoErr(t, "produce of 2 MB", sp.ErrorCode, kerr.MessageTooLarge) // over message.max.bytes, but read and answered
}

// hostileNoCuts fails the test if the broker had to cut a string to fit an
// answer (protoConn.roundTrip already fails on a frame that does not decode).
func hostileNoCuts(t *testing.T, logs *robustLogs) {
	t.Helper()
	if lines := logs.lines("response string is too long"); len(lines) > 0 {
		t.Errorf("the broker had to cut %d response strings; first:\n%s", len(lines), shorten(lines[0], 2000))
	}
}

// A 32 KiB topic name (the longest a non-flexible request can carry) in
// DescribeConfigs v0, CreatePartitions v1, IncrementalAlterConfigs v0 or
// AlterConfigs v1 came back inside an error message ("...: <name>") longer
// than an int16 length, so the answer could not be decoded. Such names are
// now refused as Kafka does, with INVALID_TOPIC_EXCEPTION, and messages
// are shortened.
func TestHostileLongTopicNameInConfigsAndPartitions(t *testing.T) {
	b, logs := hostileBroker(t, nil)
	c := protoDial(t, b)
	name := strings.Repeat("t", 32767)
	check := func(api string, code int16, msg *string) {
		t.Helper()
		protoErr(t, api, code, kerr.InvalidTopicException)
		if msg != nil && len(*msg) > maxErrorMessage {
			t.Errorf("%s: the error message is %d bytes", api, len(*msg))
		}
	}
	dc := c.roundTrip(&kmsg.DescribeConfigsRequest{Resources: []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: name}}}, 0).(*kmsg.DescribeConfigsResponse)
	check("DescribeConfigs v0", dc.Resources[0].ErrorCode, dc.Resources[0].ErrorMessage)
	cp := c.roundTrip(&kmsg.CreatePartitionsRequest{Topics: []kmsg.CreatePartitionsRequestTopic{{Topic: name, Count: 3}}, TimeoutMillis: 1000}, 1).(*kmsg.CreatePartitionsResponse)
	check("CreatePartitions v1", cp.Topics[0].ErrorCode, cp.Topics[0].ErrorMessage)
	iac := c.roundTrip(&kmsg.IncrementalAlterConfigsRequest{Resources: []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: name,
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}}}}, 0).(*kmsg.IncrementalAlterConfigsResponse)
	check("IncrementalAlterConfigs v0", iac.Resources[0].ErrorCode, iac.Resources[0].ErrorMessage)
	ac := c.roundTrip(&kmsg.AlterConfigsRequest{Resources: []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: name,
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}}}}, 1).(*kmsg.AlterConfigsResponse)
	check("AlterConfigs v1", ac.Resources[0].ErrorCode, ac.Resources[0].ErrorMessage)
	hostileNoCuts(t, logs)
}

// A 40,000-byte group id, which flexible requests can carry, used to be
// stored, after which every ListGroups v0-v2 answer, for every client,
// held a string its int16 length cannot describe. Every request that
// creates a group (or a transactional id) now refuses such ids:
// INVALID_GROUP_ID, or INVALID_REQUEST for transactional, member and
// instance ids and protocol names.
func TestHostileLongGroupIDsAreRefused(t *testing.T) {
	b, logs := hostileBroker(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	protoCreateTopic(t, b, "hostile-t", 1, nil)
	c := protoDial(t, b)
	long := strings.Repeat("g", 40000)

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = long, 10000, 10000, "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0}}}
	jr := c.roundTrip(join, 9).(*kmsg.JoinGroupResponse)
	protoErr(t, "JoinGroup v9", jr.ErrorCode, kerr.InvalidGroupID)
	join.Group, join.Protocols[0].Name = "hostile-ok", long
	jr = c.roundTrip(join, 9).(*kmsg.JoinGroupResponse)
	protoErr(t, "JoinGroup v9 with a long protocol name", jr.ErrorCode, kerr.InvalidRequest)

	hb := c.roundTrip(hostileHeartbeat(long, "m", 0, nil), 1).(*kmsg.ConsumerGroupHeartbeatResponse)
	protoErr(t, "ConsumerGroupHeartbeat", hb.ErrorCode, kerr.InvalidGroupID)
	hb = c.roundTrip(hostileHeartbeat("hostile-cg", long, 0, nil), 1).(*kmsg.ConsumerGroupHeartbeatResponse)
	protoErr(t, "ConsumerGroupHeartbeat with a long member id", hb.ErrorCode, kerr.InvalidRequest)

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = long, -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "hostile-t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	cr := c.roundTrip(commit, 8).(*kmsg.OffsetCommitResponse)
	protoErr(t, "OffsetCommit v8", cr.Topics[0].Partitions[0].ErrorCode, kerr.InvalidGroupID)

	shb := kmsg.NewPtrShareGroupHeartbeatRequest()
	shb.GroupID, shb.MemberID, shb.SubscribedTopicNames = long, "m", []string{"hostile-t"}
	sr := c.roundTrip(shb, 1).(*kmsg.ShareGroupHeartbeatResponse)
	protoErr(t, "ShareGroupHeartbeat", sr.ErrorCode, kerr.InvalidGroupID)

	iac := &kmsg.IncrementalAlterConfigsRequest{Resources: []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeGroupConfig, ResourceName: long,
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "share.auto.offset.reset", Value: kmsg.StringPtr("earliest")}}}}}
	ir := c.roundTrip(iac, 1).(*kmsg.IncrementalAlterConfigsResponse)
	protoErr(t, "IncrementalAlterConfigs of a group config", ir.Resources[0].ErrorCode, kerr.InvalidGroupID)

	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr(long), 10000
	pr := c.roundTrip(init, 4).(*kmsg.InitProducerIDResponse)
	protoErr(t, "InitProducerID v4", pr.ErrorCode, kerr.InvalidRequest)
	init.TransactionalID = kmsg.StringPtr("hostile-txn")
	pr = c.roundTrip(init, 4).(*kmsg.InitProducerIDResponse)
	protoErr(t, "InitProducerID v4", pr.ErrorCode, nil)
	ao := &kmsg.AddOffsetsToTxnRequest{TransactionalID: "hostile-txn", ProducerID: pr.ProducerID, ProducerEpoch: pr.ProducerEpoch, Group: long}
	aor := c.roundTrip(ao, 3).(*kmsg.AddOffsetsToTxnResponse)
	protoErr(t, "AddOffsetsToTxn v3", aor.ErrorCode, kerr.InvalidGroupID)

	for v := int16(0); v <= 5; v++ {
		lg := c.roundTrip(kmsg.NewPtrListGroupsRequest(), v).(*kmsg.ListGroupsResponse)
		for _, g := range lg.Groups {
			if len(g.Group) > maxWireString {
				t.Errorf("ListGroups v%d lists a group id of %d bytes", v, len(g.Group))
			}
		}
	}
	hostileNoCuts(t, logs)
}

// A classic member's id is its client id and a random suffix, as in Kafka:
// with a client id of 32767 bytes (the most a request header carries) the
// id was 32804 bytes, too long for JoinGroup v0-v5. The prefix is now cut.
func TestHostileLongClientIDMakesAMemberIDThatFits(t *testing.T) {
	b, logs := hostileBroker(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	c := protoDial(t, b)
	c.fmt = kmsg.NewRequestFormatter(kmsg.FormatterClientID(strings.Repeat("c", 32767)))
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = "hostile-g", 10000, 10000, "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0}}}
	jr := c.roundTrip(join, 0).(*kmsg.JoinGroupResponse)
	protoErr(t, "JoinGroup v0", jr.ErrorCode, nil)
	if len(jr.MemberID) > maxWireString || !strings.HasPrefix(jr.MemberID, "ccc") {
		t.Errorf("member id of %d bytes", len(jr.MemberID))
	}
	dg := c.roundTrip(&kmsg.DescribeGroupsRequest{Groups: []string{"hostile-g"}}, 0).(*kmsg.DescribeGroupsResponse)
	if len(dg.Groups) != 1 || len(dg.Groups[0].Members) != 1 || dg.Groups[0].Members[0].MemberID != jr.MemberID {
		t.Errorf("DescribeGroups v0 does not show the member: %+v", dg.Groups)
	}
	hostileNoCuts(t, logs)
}

// Offset metadata is limited by offset.metadata.max.bytes, which may be set
// above what OffsetFetch v0-v5 can answer with; and transactional commits
// were not limited at all. Both now answer OFFSET_METADATA_TOO_LARGE above
// min(offset.metadata.max.bytes, 32767).
func TestHostileLongOffsetMetadataIsRefused(t *testing.T) {
	b, logs := hostileBroker(t, map[string]string{"offset.metadata.max.bytes": "100000"})
	protoCreateTopic(t, b, "hostile-t", 1, nil)
	c := protoDial(t, b)
	meta := kmsg.StringPtr(strings.Repeat("m", 40000))
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "hostile-g", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "hostile-t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, Metadata: meta}}}}
	cr := c.roundTrip(commit, 8).(*kmsg.OffsetCommitResponse)
	protoErr(t, "OffsetCommit v8", cr.Topics[0].Partitions[0].ErrorCode, kerr.OffsetMetadataTooLarge)

	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("hostile-txn"), 10000
	pr := c.roundTrip(init, 4).(*kmsg.InitProducerIDResponse)
	ao := c.roundTrip(&kmsg.AddOffsetsToTxnRequest{TransactionalID: "hostile-txn", ProducerID: pr.ProducerID, ProducerEpoch: pr.ProducerEpoch, Group: "hostile-g"}, 3).(*kmsg.AddOffsetsToTxnResponse)
	protoErr(t, "AddOffsetsToTxn", ao.ErrorCode, nil)
	toc := &kmsg.TxnOffsetCommitRequest{TransactionalID: "hostile-txn", Group: "hostile-g", ProducerID: pr.ProducerID, ProducerEpoch: pr.ProducerEpoch, Generation: -1,
		Topics: []kmsg.TxnOffsetCommitRequestTopic{{Topic: "hostile-t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1, Metadata: meta}}}}}
	tr := c.roundTrip(toc, 3).(*kmsg.TxnOffsetCommitResponse)
	protoErr(t, "TxnOffsetCommit v3", tr.Topics[0].Partitions[0].ErrorCode, kerr.OffsetMetadataTooLarge)

	of := c.roundTrip(&kmsg.OffsetFetchRequest{Group: "hostile-g", Topics: []kmsg.OffsetFetchRequestTopic{{Topic: "hostile-t", Partitions: []int32{0}}}}, 1).(*kmsg.OffsetFetchResponse)
	protoErr(t, "OffsetFetch v1", of.Topics[0].Partitions[0].ErrorCode, nil)
	hostileNoCuts(t, logs)
}

// The last line of defence: whatever got past the checks, a non-flexible
// answer never carries a string longer than its int16 length. The string
// is cut (with a log line naming the field, unless it is an error
// message, which is cut quietly) and the frame decodes.
func TestHostileFitStringsCutsWhatDoesNotFit(t *testing.T) {
	lg := kmsg.NewPtrListGroupsResponse()
	lg.Groups = []kmsg.ListGroupsResponseGroup{{Group: "ok"}, {Group: strings.Repeat("g", 40000), ProtocolType: "consumer"}}
	dc := kmsg.NewPtrDescribeConfigsResponse()
	dc.Resources = []kmsg.DescribeConfigsResponseResource{{ErrorCode: 3, ErrorMessage: kmsg.StringPtr(strings.Repeat("é", 20000)), ResourceName: "t"}}
	for _, resp := range []kmsg.Response{lg, dc} {
		var cuts []string
		fitValue(reflect.ValueOf(resp), func(path string, n int) { cuts = append(cuts, fmt.Sprintf("%s:%d", path, n)) })
		again := kmsg.ResponseForKey(resp.Key())
		if err := again.ReadFrom(resp.AppendTo(nil)); err != nil {
			t.Fatalf("%s v0 does not decode after fitting: %v", kmsg.NameForKey(resp.Key()), err)
		}
		switch r := again.(type) {
		case *kmsg.ListGroupsResponse:
			if len(r.Groups) != 2 || len(r.Groups[1].Group) > maxWireString || r.Groups[1].ProtocolType != "consumer" {
				t.Errorf("ListGroups after fitting: %d groups", len(r.Groups))
			}
			if strings.Join(cuts, ",") != ".Groups[].Group:40000" {
				t.Errorf("reported cuts %v, want the long group id", cuts)
			}
		case *kmsg.DescribeConfigsResponse:
			if m := *r.Resources[0].ErrorMessage; len(m) > maxWireString || !utf8.ValidString(m) || r.Resources[0].ResourceName != "t" {
				t.Errorf("DescribeConfigs message after fitting: %d bytes, valid UTF-8 %v", len(m), utf8.ValidString(m))
			}
			if len(cuts) != 0 {
				t.Errorf("a shortened error message was reported: %v", cuts)
			}
		}
	}
}

// A fetch or share fetch may ask to wait up to 24 days (MaxWaitMillis is an
// int32). When its client hung up, the connection's goroutines and buffers
// stayed until that wait ran out, so connecting, asking and hanging up in
// a loop piled them up. The wait now ends when the connection's reader
// stops.
func TestHostileLongPollEndsWithItsConnection(t *testing.T) {
	b := protoBroker(t, nil)
	id := protoCreateTopic(t, b, "hostile-empty", 1, nil)
	before := hostileConnCount(b)

	fetch := protoFetchReq("hostile-empty", id, 0, 0)
	fetch.MaxWaitMillis, fetch.MinBytes = math.MaxInt32, 1
	c1 := protoDial(t, b)
	c1.send(fetch, 12)

	c2 := protoDial(t, b)
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = "hostile-sg", "hostile-m", []string{"hostile-empty"}
	hr := c2.roundTrip(hb, 1).(*kmsg.ShareGroupHeartbeatResponse)
	protoErr(t, "share heartbeat", hr.ErrorCode, nil)
	sf := kmsg.NewPtrShareFetchRequest()
	sf.GroupID, sf.MemberID, sf.ShareSessionEpoch = kmsg.StringPtr("hostile-sg"), kmsg.StringPtr("hostile-m"), 0
	sf.MaxWaitMillis, sf.MinBytes, sf.MaxBytes, sf.MaxRecords, sf.BatchSize = math.MaxInt32, 1, 1<<20, 10, 10
	sf.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: id, Partitions: []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}}}
	c2.send(sf, 1)

	protoWait(t, "both connections to be served", func() bool { return hostileConnCount(b) == before+2 })
	time.Sleep(100 * time.Millisecond) // both are waiting now
	c1.nc.Close()
	c2.nc.Close()
	protoWait(t, "the broker to let go of both connections", func() bool { return hostileConnCount(b) == before })
}

// An answer followed on the connection by an acks=0 produce (which gets no
// answer) stayed in the connection's write buffer: the writer flushes after
// the last queued response, and the last one had nothing to write. The
// client waited for its fetch answer until the next request came. Found by
// FuzzHostileRequests (a Produce v0 pipelined after others).
func TestHostileAnswerBeforeAnUnansweredProduceIsSent(t *testing.T) {
	b := protoBroker(t, nil)
	id := protoCreateTopic(t, b, "hostile-q", 1, nil)
	c := protoDial(t, b)
	fetch := protoFetchReq("hostile-q", id, 0, 0)
	fetch.MaxWaitMillis = 200 // the fetch waits in the writer, so the produce queues behind it
	fetch.SetVersion(12)
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = 0, 1000
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: "hostile-q", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: protoBatch(t, protoBatchSpec{values: []string{"x"}})}}}}
	produce.SetVersion(7)
	frames := c.fmt.AppendRequest(nil, fetch, 1)
	fetch.MaxWaitMillis = 0 // queued behind the first while it waits, as is the produce
	frames = append(frames, c.fmt.AppendRequest(nil, fetch, 2)...)
	frames = append(frames, c.fmt.AppendRequest(nil, produce, 3)...)
	if _, err := c.nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	for _, corr := range []int32{1, 2} {
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var head [8]byte
		if _, err := io.ReadFull(c.r, head[:]); err != nil {
			t.Fatalf("the answer to fetch %d did not come: %v", corr, err)
		}
		if got := int32(binary.BigEndian.Uint32(head[4:])); got != corr {
			t.Fatalf("answer %d has correlation id %d", corr, got)
		}
		if _, err := io.CopyN(io.Discard, c.r, int64(binary.BigEndian.Uint32(head[:]))-4); err != nil {
			t.Fatal(err)
		}
	}
}

// AlterConfigs with the same topic 10,000 times applied it 10,000 times,
// each an fsync of the metadata store: one small request kept its
// connection busy for tens of seconds. Like Kafka, a resource listed more
// than once (in AlterConfigs, IncrementalAlterConfigs, CreatePartitions,
// DeleteTopics, CreateTopics) is refused with INVALID_REQUEST at every
// occurrence, and nothing is applied. Found by FuzzHostileRequests.
func TestHostileResourceListedTwiceIsRefused(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "hostile-dup", 1, nil)
	c := protoDial(t, b)
	const copies = 10_000

	ac := kmsg.NewPtrAlterConfigsRequest()
	for i := 0; i < copies; i++ {
		ac.Resources = append(ac.Resources, kmsg.AlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "hostile-dup",
			Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}})
	}
	ar := c.roundTrip(ac, 2).(*kmsg.AlterConfigsResponse)
	iac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for i := 0; i < copies; i++ {
		iac.Resources = append(iac.Resources, kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeGroupConfig, ResourceName: "hostile-g",
			Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "share.auto.offset.reset", Value: kmsg.StringPtr("earliest")}}})
	}
	ir := c.roundTrip(iac, 1).(*kmsg.IncrementalAlterConfigsResponse)
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "hostile-dup", Count: 2}, {Topic: "hostile-dup", Count: 3}}
	cr := c.roundTrip(cp, 1).(*kmsg.CreatePartitionsResponse)
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"hostile-dup", "hostile-dup"}
	dr := c.roundTrip(dt, 5).(*kmsg.DeleteTopicsResponse)

	codes := map[string][]int16{}
	for _, r := range ar.Resources {
		codes["AlterConfigs"] = append(codes["AlterConfigs"], r.ErrorCode)
	}
	for _, r := range ir.Resources {
		codes["IncrementalAlterConfigs"] = append(codes["IncrementalAlterConfigs"], r.ErrorCode)
	}
	for _, r := range cr.Topics {
		codes["CreatePartitions"] = append(codes["CreatePartitions"], r.ErrorCode)
	}
	for _, r := range dr.Topics {
		codes["DeleteTopics"] = append(codes["DeleteTopics"], r.ErrorCode)
	}
	for api, want := range map[string]int{"AlterConfigs": copies, "IncrementalAlterConfigs": copies, "CreatePartitions": 2, "DeleteTopics": 2} {
		if len(codes[api]) != want {
			t.Errorf("%s answered %d resources, want %d", api, len(codes[api]), want)
		}
		for _, code := range codes[api] {
			if code != kerr.InvalidRequest.Code {
				t.Errorf("%s answered %v for a resource listed twice, want INVALID_REQUEST", api, kerr.ErrorForCode(code))
				break
			}
		}
	}
	dc := c.roundTrip(&kmsg.DescribeConfigsRequest{Resources: []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "hostile-dup", ConfigNames: []string{"retention.ms"}}}}, 4).(*kmsg.DescribeConfigsResponse)
	if v := dc.Resources[0].Configs[0]; v.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms was set to %s by a refused request", protoStr(v.Value))
	}
	if !protoTopicExists(t, b, "hostile-dup") {
		t.Error("a refused DeleteTopics deleted the topic")
	}
}

// A Metadata request naming a topic of many partitions many times was
// answered with every copy (10,000 copies of a 10,000-partition topic: 10^8
// partition entries from a 200 KB request), and DescribeLogDirs likewise;
// a fetch of the same partition many times, asking for 2 GiB, read its
// data into memory for every copy. Like Kafka, Metadata, DescribeLogDirs
// and Fetch answer each topic and partition once, and a fetch carries at
// most fetch.max.bytes.
func TestHostileRepeatedTopicsAreAnsweredOnce(t *testing.T) {
	b := protoBroker(t, map[string]string{"fetch.max.bytes": "1048576"})
	id := protoCreateTopic(t, b, "hostile-many", 50, nil)
	c := protoDial(t, b)

	meta := kmsg.NewPtrMetadataRequest()
	dirs := kmsg.NewPtrDescribeLogDirsRequest()
	for i := 0; i < 1000; i++ {
		meta.Topics = append(meta.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr("hostile-many")}, kmsg.MetadataRequestTopic{TopicID: id})
		dirs.Topics = append(dirs.Topics, kmsg.DescribeLogDirsRequestTopic{Topic: "hostile-many", Partitions: []int32{0, 1, 2}})
	}
	mr := c.roundTrip(meta, 12).(*kmsg.MetadataResponse)
	if len(mr.Topics) != 2 || len(mr.Topics[0].Partitions) != 50 {
		t.Errorf("Metadata answered %d topics for one topic named 1000 times and its id 1000 times, want 2", len(mr.Topics))
	}
	dr := c.roundTrip(dirs, 4).(*kmsg.DescribeLogDirsResponse)
	if got := dr.Dirs[0].Topics; len(got) != 1 || len(got[0].Partitions) != 3 {
		t.Errorf("DescribeLogDirs answered %d topics for 3 partitions of one topic asked 1000 times", len(got))
	}

	cl := protoClient(t, b, kgo.DefaultProduceTopic("hostile-many"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < 4; i++ {
		if err := cl.ProduceSync(protoCtx(t), &kgo.Record{Partition: 0, Value: bytes.Repeat([]byte{'v'}, 200<<10)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	fetch := protoFetchReq("hostile-many", id, 0, 0)
	fetch.MaxBytes = math.MaxInt32
	one := fetch.Topics[0].Partitions[0]
	one.PartitionMaxBytes = math.MaxInt32
	fetch.Topics[0].Partitions = nil
	for i := 0; i < 100; i++ {
		fetch.Topics[0].Partitions = append(fetch.Topics[0].Partitions, one)
	}
	fr := c.roundTrip(fetch, 13).(*kmsg.FetchResponse)
	if n := len(fr.Topics[0].Partitions); n != 1 {
		t.Errorf("a fetch of one partition named 100 times answered %d partitions, want 1", n)
	}
	total := 0
	for _, p := range fr.Topics[0].Partitions {
		total += len(p.RecordBatches)
	}
	// Up to fetch.max.bytes, and the first batch of the first partition whole.
	if total > 1<<20+300<<10 {
		t.Errorf("a fetch of one 800 KB partition asked 100 times carried %d bytes; fetch.max.bytes is 1 MiB", total)
	}
}

// Describe requests naming the same thing many times described every copy:
// DescribeConfigs of one topic 10,000 times with documentation (35 configs
// each) made 350,000 entries, DescribeGroups of a large group 10,000 times
// copied every member's metadata 10,000 times. Each thing is now described
// once.
func TestHostileRepeatedDescribesAreAnsweredOnce(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "hostile-d", 1, nil)
	c := protoDial(t, b)
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.IncludeDocumentation = true
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dt := kmsg.NewPtrDescribeTransactionsRequest()
	for i := 0; i < 10_000; i++ {
		dc.Resources = append(dc.Resources, kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "hostile-d"})
		dg.Groups = append(dg.Groups, "hostile-g")
		dt.TransactionalIDs = append(dt.TransactionalIDs, "hostile-t")
	}
	if n := len(c.roundTrip(dc, 4).(*kmsg.DescribeConfigsResponse).Resources); n != 1 {
		t.Errorf("DescribeConfigs answered %d resources for one asked 10,000 times", n)
	}
	if n := len(c.roundTrip(dg, 5).(*kmsg.DescribeGroupsResponse).Groups); n != 1 {
		t.Errorf("DescribeGroups answered %d groups for one asked 10,000 times", n)
	}
	if n := len(c.roundTrip(dt, 0).(*kmsg.DescribeTransactionsResponse).TransactionStates); n != 1 {
		t.Errorf("DescribeTransactions answered %d ids for one asked 10,000 times", n)
	}
	// Different questions about the same topic are each answered.
	dc.Resources = []kmsg.DescribeConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "hostile-d", ConfigNames: []string{"retention.ms"}},
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "hostile-d", ConfigNames: []string{"cleanup.policy"}},
	}
	if n := len(c.roundTrip(dc, 4).(*kmsg.DescribeConfigsResponse).Resources); n != 2 {
		t.Errorf("DescribeConfigs answered %d resources for two different questions", n)
	}
}
