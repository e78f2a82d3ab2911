package broker

// Regression tests of issue 12's "one request kills the broker": each
// request here crashed the broker, made it send an answer no client can
// decode, or held its resources without bound, before the fix it names.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

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
// the test ends.
func hostileWithAPI(t *testing.T, key kmsg.Key, a api) {
	real := apis[key.Int16()]
	apis[key.Int16()] = a
	t.Cleanup(func() { apis[key.Int16()] = real })
}

// A panic while serving one request, in the handler or in its deferred
// finish step, closes that client's connection with an error log line that
// names the API, version, client address and id, and has the stack; the
// broker goes on serving every other connection, including one opened
// before the panic.
func TestHostilePanicClosesOnlyItsConnection(t *testing.T) {
	b, logs := hostileBroker(t, nil)
	protoCreateTopic(t, b, "hostile-good", 1, nil)
	good := startRobustGoodClient(t, b.Addr(), "hostile-good")
	bystander := protoDial(t, b)
	bystander.roundTrip(kmsg.NewPtrApiVersionsRequest(), 3)

	hostileWithAPI(t, kmsg.DescribeCluster, api{min: 0, max: 1, handle: func(*Broker, *request, kmsg.Request) (kmsg.Response, func()) {
		var m map[string]int
		m["boom"] = 1 // a nil map write: the kind of bug a hostile request finds
		return nil, nil
	}})
	hostileWithAPI(t, kmsg.DescribeLogDirs, api{min: 0, max: 4, handle: func(_ *Broker, _ *request, req kmsg.Request) (kmsg.Response, func()) {
		return req.ResponseKind(), func() { panic("finish step failed") }
	}})

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
	c.send(req, 0)
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
