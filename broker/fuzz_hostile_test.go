package broker

// The structured fuzzer of issue 12: requests of every API and version the
// broker advertises, built with kmsg and filled with hostile values (empty,
// nil and 64 KiB strings; -1, min and max integers; 10,000-element arrays;
// unknown topic ids; bad names, configs and regexes), some sent with the
// identity of a member that joined a group, opened a share session or
// started a transaction first, some on connections that never read their
// answers. Meanwhile a franz-go producer (acks=all, idempotent) writes
// numbered records. The broker must answer every request with a frame that
// decodes (or close the connection, which here only a bug does) within
// hostileAnswerTime, must never panic or cut a string to fit, must keep
// every acknowledged record at its offset, and its heap is sampled.
//
// TestHostileRequestsEveryAPI runs a fixed set for every API key and
// version in a few seconds; FuzzHostileRequests lets the fuzzing engine
// steer the same generator with its input bytes.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hostileAnswerTime bounds how long the broker may take to answer all the
// requests of one connection. The generator keeps the waits a client asks
// for (fetch max wait, rebalance and session timeouts) short, and the
// broker's group timers are configured short, so every legitimate wait
// ends well within it (and within the fuzzing engine's 10 s per input).
const hostileAnswerTime = 8 * time.Second

// hostileSafeTopic receives the background producer's records; the
// generator never names it.
const hostileSafeTopic = "hostile-safe"

// ---- entropy ----

// hostileEntropy is the source of every choice of the generator: the
// fuzzer's input bytes first (so that mutating them steers it), then a PRNG
// seeded from them.
type hostileEntropy struct {
	data []byte
	rng  *rand.Rand
}

func newHostileEntropy(data []byte) *hostileEntropy {
	h := fnv.New64a()
	h.Write(data)
	return &hostileEntropy{data: data, rng: rand.New(rand.NewPCG(h.Sum64(), uint64(len(data))))}
}

// intn returns a choice in [0, n).
func (e *hostileEntropy) intn(n int) int {
	if n <= 1 {
		return 0
	}
	if len(e.data) > 0 {
		v := int(e.data[0])
		e.data = e.data[1:]
		if n > 256 && len(e.data) > 0 {
			v = v<<8 | int(e.data[0])
			e.data = e.data[1:]
		}
		return v % n
	}
	return e.rng.IntN(n)
}

func (e *hostileEntropy) chance(percent int) bool { return e.intn(100) < percent }

// ---- identity ----

// hostileIdentity is what a connection set up before its hostile requests:
// the generator puts these values into the fields that name them, so the
// requests reach deep into the coordinators' state.
type hostileIdentity struct {
	topics   []string
	topicIDs [][16]byte

	group, member, instance string // classic group
	generation              int32
	cgroup, cmember         string // KIP-848 consumer group
	cepoch                  int32
	sgroup, smember         string // share group, with an open share session
	sepoch, ssession        int32
	txnID                   string // transactional producer with a partition added
	pid                     int64
	pepoch                  int16
}

func (id *hostileIdentity) groups() []string {
	return []string{id.group, id.cgroup, id.sgroup}
}

// ---- values ----

// hostileLong returns a string of n bytes.
func hostileLong(n int) string { return strings.Repeat("x", n) }

// hostileBadNames are names no topic or group should be allowed to have,
// or that are legal but odd.
var hostileBadNames = []string{
	"", ".", "..", "a/b", "../../etc/passwd", "\x00", "with space", "名前", "topic\n", "-", "_", "a.b_c",
	strings.Repeat("t", 249), strings.Repeat("t", 250), "__consumer_offsets", "__transaction_state",
}

var hostileRegexes = []string{"(", "[a-", ".*", "(a+)+$", "hostile.*", "\\", "(?i)HOSTILE", strings.Repeat("(", 1000), "[[:alpha:]]+", ""}

var hostileConfigNames = []string{
	"retention.ms", "retention.bytes", "cleanup.policy", "max.message.bytes", "segment.bytes", "min.insync.replicas",
	"message.timestamp.type", "compression.type", "share.auto.offset.reset", "no.such.config", "", "log.retention.bytes",
}

var hostileConfigValues = []string{
	"-1", "0", "1", "9223372036854775807", "-9223372036854775808", "99999999999999999999", "compact", "delete",
	"delete,compact", "abc", "", "latest", "earliest", "CreateTime", "1e9", "0x10", " 1",
}

// str chooses a string for a field called name; a non-flexible version
// cannot encode more than 32767 bytes, so longer names are cut for it.
func (g *hostileGen) str(name string) string {
	s := g.pickStr(name)
	if !g.flexible && len(s) > maxWireString {
		s = s[len(s)-maxWireString:]
	}
	return s
}

func (g *hostileGen) pickStr(name string) string {
	e := g.e
	// Sometimes a long one: as long as the version can encode (int16
	// lengths unless flexible), or longer where it can.
	if e.chance(6) {
		longs := []int{32767, 32768 - 1, 249, 250, 1 << 10}
		if g.flexible {
			longs = append(longs, 32768, 40000, 64<<10)
		}
		return hostileLong(longs[e.intn(len(longs))])
	}
	if e.chance(8) {
		return hostileBadNames[e.intn(len(hostileBadNames))]
	}
	id := g.id
	pick := func(s ...string) string { return s[e.intn(len(s))] }
	switch {
	case strings.Contains(name, "Regex") || strings.Contains(name, "Pattern"):
		return pick(hostileRegexes...)
	case strings.Contains(name, "Transactional"):
		return pick(id.txnID, id.txnID, "hostile-other-txn")
	case strings.Contains(name, "Instance"):
		return pick(id.instance, id.instance, "hostile-instance-2")
	case strings.Contains(name, "Member") || name == "Leader":
		return pick(id.member, id.cmember, id.smember, "hostile-unknown-member")
	case strings.Contains(name, "Group") || name == "CoordinatorKey" || name == "CoordinatorKeys":
		return pick(append(id.groups(), id.txnID, "hostile-unknown-group")...)
	case strings.Contains(name, "Topic") || strings.Contains(name, "Names"):
		return pick(append(slices.Clone(id.topics), "hostile-unknown-topic", "hostile-new-topic")...)
	case name == "ResourceName":
		return pick(append(append(slices.Clone(id.topics), id.groups()...), "1", "", "2", "hostile-unknown-topic")...)
	case name == "Name" || name == "ConfigNames" || name == "Key":
		return pick(append(slices.Clone(hostileConfigNames), id.topics...)...)
	case name == "Value":
		return pick(hostileConfigValues...)
	case strings.Contains(name, "Protocol") || name == "ServerAssignor" || name == "Assignor":
		return pick("consumer", "range", "uniform", "roundrobin", "cooperative-sticky", "share", "")
	}
	return pick(append(append(slices.Clone(hostileConfigValues), id.topics...), id.groups()...)...)
}

// integer chooses a value for an integer field called name, of the given
// bit size.
func (g *hostileGen) integer(name string, bits int) int64 {
	e := g.e
	lo, hi := int64(-1)<<(bits-1), int64(1)<<(bits-1)-1
	id := g.id
	pick := func(v ...int64) int64 { return v[e.intn(len(v))] }
	switch {
	case strings.HasSuffix(name, "Millis") || strings.HasSuffix(name, "Ms"):
		// Waits a client asks for are honoured as Kafka does; long ones
		// are left out so every answer is due within hostileAnswerTime.
		return pick(-1, 0, 1, 20, 50, lo)
	case name == "Generation" || name == "GenerationID":
		return pick(int64(id.generation), int64(id.generation), -1, 0, hi, lo)
	case name == "MemberEpoch":
		return pick(int64(id.cepoch), int64(id.sepoch), 0, -1, -2, hi, lo)
	case name == "ShareSessionEpoch":
		return pick(int64(id.ssession), int64(id.ssession), 0, -1, hi, lo)
	case name == "ProducerID":
		return pick(id.pid, id.pid, -1, 0, hi, lo)
	case name == "ProducerEpoch":
		return pick(int64(id.pepoch), int64(id.pepoch), -1, 0, hi)
	case name == "Partition" || name == "Partitions":
		return pick(0, 0, 1, -1, 2, hi, lo)
	case name == "NumPartitions" || name == "Count" || name == "ReplicationFactor":
		return pick(-1, 0, 1, 3, hi, lo)
	case name == "Acks":
		return pick(-1, 1, 0, 2, lo)
	}
	return pick(-1, 0, 1, 2, 7, hi, lo, int64(e.intn(1000)), lo+1, hi-1)
}

// bytes chooses a byte field's value; records get real batches and
// batches with hostile headers.
func (g *hostileGen) bytes(name string) []byte {
	e := g.e
	switch e.intn(6) {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		n := []int{1, 12, 61, 1 << 10, 64 << 10}[e.intn(5)]
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(e.intn(256))
		}
		return b
	}
	if name != "Records" {
		m := kmsg.ConsumerMemberMetadata{Version: int16(e.intn(4)), Topics: g.id.topics, Generation: -1}
		return m.AppendTo(nil)
	}
	batch := fuzzBatch(-1, 0, "hostile-a", "hostile-b")
	if e.chance(30) {
		batch = fuzzBatch(g.id.pid, int32(e.intn(3)), "hostile-txn")
		binary.BigEndian.PutUint16(batch[21:], 1<<4) // transactional
		binary.BigEndian.PutUint16(batch[51:], uint16(g.id.pepoch))
	}
	if e.chance(50) {
		// One header field set to a hostile value; the CRC is left as is
		// (it is recomputed half the time, so the value reaches validation).
		fields := []struct{ at, size int }{{8, 4}, {16, 1}, {21, 2}, {23, 4}, {27, 8}, {35, 8}, {43, 8}, {51, 2}, {53, 4}, {57, 4}}
		f := fields[e.intn(len(fields))]
		vals := []uint64{0, math.MaxUint64, 1 << (8*f.size - 1), 1<<(8*f.size-1) - 1, 3}
		v := vals[e.intn(len(vals))]
		for i := 0; i < f.size; i++ {
			batch[f.at+i] = byte(v >> (8 * (f.size - 1 - i)))
		}
		if e.chance(50) {
			var rb kmsg.RecordBatch
			if rb.ReadFrom(batch) == nil {
				binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], crc32.MakeTable(crc32.Castagnoli)))
			}
		}
	}
	return batch
}

// uuid chooses a topic id: a known one, none, or unknown ones.
func (g *hostileGen) uuid() [16]byte {
	e := g.e
	switch e.intn(4) {
	case 0:
		return [16]byte{}
	case 1:
		var u [16]byte
		for i := range u {
			u[i] = 0xff
		}
		return u
	case 2:
		var u [16]byte
		for i := range u {
			u[i] = byte(e.intn(256))
		}
		return u
	}
	if len(g.id.topicIDs) == 0 {
		return [16]byte{}
	}
	return g.id.topicIDs[e.intn(len(g.id.topicIDs))]
}

// hostileGen fills kmsg requests by reflection.
type hostileGen struct {
	e        *hostileEntropy
	id       *hostileIdentity
	flexible bool
	bigUsed  bool // one 10,000-element array per request is enough
	bigArray bool // whether this request may have one
}

var tagsType = reflect.TypeFor[kmsg.Tags]()

func (g *hostileGen) fill(v reflect.Value, name string) {
	e := g.e
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == tagsType {
			return
		}
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Name == "Version" {
				continue
			}
			g.fill(v.Field(i), f.Name)
		}
	case reflect.Pointer:
		if e.chance(20) {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		g.fill(p.Elem(), name)
		v.Set(p)
	case reflect.String:
		v.SetString(g.str(name))
	case reflect.Bool:
		v.SetBool(e.chance(50))
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(g.integer(name, v.Type().Bits()))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint([]uint64{0, 1, math.MaxUint64 >> (64 - v.Type().Bits())}[e.intn(3)])
	case reflect.Float32, reflect.Float64:
		v.SetFloat([]float64{0, -1, math.NaN(), math.Inf(1), 1e300}[e.intn(5)])
	case reflect.Array:
		if v.Type() == reflect.TypeFor[[16]byte]() {
			v.Set(reflect.ValueOf(g.uuid()))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes(g.bytes(name))
			return
		}
		n := []int{0, 1, 1, 1, 2, 3}[e.intn(6)]
		if e.chance(15) {
			v.SetZero() // nil, where the version allows it
			return
		}
		big := false
		if g.bigArray && !g.bigUsed && e.chance(10) {
			n, big, g.bigUsed = 10_000, true, true
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		if big {
			// The same small element 10,000 times: what matters is the
			// count, and long strings in each would only make the
			// request too large to be read.
			saved := *g
			g.bigArray = false
			g.fillSmall(s.Index(0), name)
			*g = saved
			g.bigUsed = true
			for i := 1; i < n; i++ {
				s.Index(i).Set(s.Index(0))
			}
		} else {
			for i := 0; i < n; i++ {
				g.fill(s.Index(i), name)
			}
		}
		v.Set(s)
	}
}

// fillSmall fills v without long strings or large byte fields.
func (g *hostileGen) fillSmall(v reflect.Value, name string) {
	g.fill(v, name)
	shrinkValue(v)
}

// shrinkValue cuts every string and byte slice under v to a few bytes.
func shrinkValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			shrinkValue(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				shrinkValue(v.Field(i))
			}
		}
	case reflect.String:
		if v.Len() > 16 {
			v.SetString(v.String()[:16])
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if v.Len() > 16 {
				v.SetBytes(v.Bytes()[:16])
			}
			return
		}
		for i := 0; i < v.Len(); i++ {
			shrinkValue(v.Index(i))
		}
	}
}

// hostileMaxRequest keeps generated requests under the broker's limit for
// non-produce requests, so that they are read and answered.
const hostileMaxRequest = 8 << 20

// hostileRequest builds one request of key at version from e. It reports
// false if no encodable request came out (kmsg cannot encode a nil value
// where the version wants one).
func hostileRequest(e *hostileEntropy, id *hostileIdentity, key int16, version int16) (kmsg.Request, []byte, bool) {
	for attempt := 0; attempt < 4; attempt++ {
		req := kmsg.RequestForKey(key)
		req.SetVersion(version)
		g := &hostileGen{e: e, id: id, flexible: req.IsFlexible(), bigArray: attempt < 2}
		g.fill(reflect.ValueOf(req).Elem(), "")
		req.SetVersion(version)
		if attempt >= 2 {
			shrinkValue(reflect.ValueOf(req).Elem())
		}
		frame, ok := hostileEncode(req, e)
		if ok && len(frame) <= hostileMaxRequest {
			return req, frame, true
		}
	}
	return nil, nil, false
}

// hostileClientIDs are the client ids connections use; the request header
// encodes them with an int16 length in every version.
var hostileClientIDs = []*string{kmsg.StringPtr("hostile"), nil, kmsg.StringPtr(""), kmsg.StringPtr(hostileLong(32767)), kmsg.StringPtr("名前")}

// hostileEncode frames req (correlation id 0, fixed up when sent); kmsg
// panics on a nil value a version cannot encode.
func hostileEncode(req kmsg.Request, e *hostileEntropy) (frame []byte, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	var opts []kmsg.RequestFormatterOpt
	if id := hostileClientIDs[e.intn(len(hostileClientIDs))]; id != nil {
		opts = append(opts, kmsg.FormatterClientID(*id))
	}
	return kmsg.NewRequestFormatter(opts...).AppendRequest(nil, req, 0), true
}

// ---- the rig: broker, safe producer, memory sampler ----

type hostileRig struct {
	b    *Broker
	logs *robustLogs

	safe      *kgo.Client
	stopSafe  chan struct{}
	safeDone  chan struct{}
	ackedMu   sync.Mutex
	acked     map[int64]string // offset -> value of every acknowledged record
	safeFails atomic.Int64

	peakHeap atomic.Uint64
	stopMem  chan struct{}

	requests atomic.Int64
	seq      atomic.Int64

	idleMu sync.Mutex
	idle   []net.Conn // connections that never read, kept open
}

// hostileMaxIdle bounds the never-reading connections kept open at once.
const hostileMaxIdle = 8

// keepIdle keeps a never-reading connection open, closing the oldest.
func (r *hostileRig) keepIdle(nc net.Conn) {
	r.idleMu.Lock()
	defer r.idleMu.Unlock()
	r.idle = append(r.idle, nc)
	if len(r.idle) > hostileMaxIdle {
		r.idle[0].Close()
		r.idle = r.idle[1:]
	}
}

var hostileBrokerSettings = map[string]string{
	"group.initial.rebalance.delay.ms":     "0",
	"group.min.session.timeout.ms":         "10",
	"group.max.session.timeout.ms":         "3000",
	"group.consumer.session.timeout.ms":    "2000",
	"group.consumer.heartbeat.interval.ms": "500",
	"group.share.session.timeout.ms":       "2000",
	"group.share.record.lock.duration.ms":  "2000",
	"transaction.max.timeout.ms":           "10000",
	"socket.write.timeout.ms":              "2000",
}

func startHostileRig(tb testing.TB) *hostileRig {
	tb.Helper()
	r := &hostileRig{logs: &robustLogs{}, acked: map[int64]string{}, stopSafe: make(chan struct{}), safeDone: make(chan struct{}), stopMem: make(chan struct{})}
	b, err := Start(context.Background(), Config{Listen: "127.0.0.1:0", DataDir: tb.TempDir(), Settings: hostileBrokerSettings,
		Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		tb.Fatal(err)
	}
	r.b = b
	tb.Cleanup(func() { b.Close() }) // after finish, which the callers register later
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	for _, topic := range []struct {
		name       string
		partitions int32
	}{{hostileSafeTopic, 1}, {"hostile-a", 2}, {"hostile-b", 1}} {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic.name, topic.partitions, 1
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil || resp.Topics[0].ErrorCode != 0 {
			tb.Fatalf("create %s: %v %v", topic.name, err, resp)
		}
	}
	go r.sampleMemory()
	r.startSafeProducer(tb)
	return r
}

func (r *hostileRig) sampleMemory() {
	var ms runtime.MemStats
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.stopMem:
			return
		case <-t.C:
		}
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > r.peakHeap.Load() {
			r.peakHeap.Store(ms.HeapInuse)
		}
	}
}

// startSafeProducer writes numbered records with acks=all and idempotence
// (franz-go's defaults) until stopped, remembering each acknowledged
// record's offset.
func (r *hostileRig) startSafeProducer(tb testing.TB) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.b.Addr()), kgo.DefaultProduceTopic(hostileSafeTopic), kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(math.MaxInt32))
	if err != nil {
		tb.Fatal(err)
	}
	r.safe = cl
	go func() {
		defer close(r.safeDone)
		var wg sync.WaitGroup
		for i := 0; ; i++ {
			select {
			case <-r.stopSafe:
				wg.Wait()
				return
			case <-time.After(2 * time.Millisecond):
			}
			value := fmt.Sprintf("safe-%d", i)
			wg.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Value: []byte(value)}, func(rec *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					r.safeFails.Add(1)
					return
				}
				r.ackedMu.Lock()
				r.acked[rec.Offset] = value
				r.ackedMu.Unlock()
			})
		}
	}()
}

// finish stops the producer and checks that every acknowledged record is at
// its offset, that no connection is left behind, and that the broker never
// panicked or cut a string.
func (r *hostileRig) finish(t testing.TB) {
	t.Helper()
	close(r.stopSafe)
	<-r.safeDone
	r.safe.Close()
	r.checkSafeRecords(t, 0)
	r.idleMu.Lock()
	for _, nc := range r.idle {
		nc.Close()
	}
	r.idle = nil
	r.idleMu.Unlock()
	protoWait(t, "every connection of the fuzzer to be closed", func() bool { return hostileConnCount(r.b) == 0 })
	close(r.stopMem)
	r.checkLogs(t)
	t.Logf("%d hostile requests answered; %d records acknowledged and read back; peak heap in use %d MiB; the safe producer saw %d failed records",
		r.requests.Load(), len(r.acked), r.peakHeap.Load()>>20, r.safeFails.Load())
}

// checkSafeRecords reads the safe topic from offset from and checks that
// every record acknowledged there is at its offset with its value; it
// returns the offset after the last one checked.
func (r *hostileRig) checkSafeRecords(t testing.TB, from int64) int64 {
	t.Helper()
	r.ackedMu.Lock()
	acked := map[int64]string{}
	for o, v := range r.acked {
		if o >= from {
			acked[o] = v
		}
	}
	r.ackedMu.Unlock()
	last := from - 1
	for o := range acked {
		last = max(last, o)
	}
	if len(acked) == 0 {
		if from == 0 {
			t.Fatalf("the safe producer got no record acknowledged (%d failed)", r.safeFails.Load())
		}
		return from
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.b.Addr()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{hostileSafeTopic: {0: kgo.NewOffset().At(from)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[int64]string{}
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(rec *kgo.Record) { got[rec.Offset] = string(rec.Value) })
		if _, ok := got[last]; ok {
			break
		}
	}
	lost := 0
	for o, v := range acked {
		if got[o] != v {
			if lost < 5 {
				t.Errorf("acknowledged record %q at offset %d reads back as %q", v, o, got[o])
			}
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged records are not at their offsets", lost, len(acked))
	}
	return last + 1
}

// hostileBugMarks are log lines that only a bug writes.
var hostileBugMarks = []string{"panic while serving", "panic in background work", "response string is too long"}

func (r *hostileRig) checkLogs(t testing.TB) {
	t.Helper()
	for _, mark := range hostileBugMarks {
		if lines := r.logs.lines(mark); len(lines) > 0 {
			t.Errorf("the broker logged %d times %q; first:\n%s", len(lines), mark, shorten(lines[0], 8<<10))
		}
	}
}

// ---- connections ----

// hostileConn is a raw connection of the fuzzer.
type hostileConn struct {
	r        *hostileRig
	nc       net.Conn
	rd       *bufio.Reader
	corr     int32
	deadline time.Time // every answer is due by then
}

func (r *hostileRig) dial() (*hostileConn, error) {
	nc, err := net.DialTimeout("tcp", r.b.Addr(), 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("the broker no longer accepts connections: %w", err)
	}
	return &hostileConn{r: r, nc: nc, rd: bufio.NewReader(nc), deadline: time.Now().Add(hostileAnswerTime)}, nil
}

// send writes a framed request with the next correlation id.
func (c *hostileConn) send(frame []byte) (int32, error) {
	c.corr++
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	binary.BigEndian.PutUint32(frame[8:], uint32(c.corr))
	c.nc.SetWriteDeadline(c.deadline)
	_, err := c.nc.Write(frame)
	return c.corr, err
}

// errHostileClosed is a connection the broker closed instead of answering.
var errHostileClosed = errors.New("the broker closed the connection instead of answering")

// recv reads the answer to corr and checks that it decodes at its version
// and encodes back to the same bytes.
func (c *hostileConn) recv(corr int32, req kmsg.Request) (kmsg.Response, error) {
	c.nc.SetReadDeadline(c.deadline)
	var size [4]byte
	if _, err := io.ReadFull(c.rd, size[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
			return nil, errHostileClosed
		}
		return nil, fmt.Errorf("no answer within %v of connecting: %w", hostileAnswerTime, err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 256<<20 {
		return nil, fmt.Errorf("answer frame of %d bytes", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.rd, buf); err != nil {
		return nil, fmt.Errorf("answer cut short: %w", err)
	}
	if got := int32(binary.BigEndian.Uint32(buf)); got != corr {
		return nil, fmt.Errorf("answer has correlation id %d, want %d", got, corr)
	}
	body := buf[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		rd := kbin.Reader{Src: body}
		kmsg.SkipTags(&rd)
		body = rd.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("answer does not decode: %w", err)
	}
	if again := resp.AppendTo(nil); string(again) != string(body) {
		return nil, fmt.Errorf("answer of %d bytes decodes to one that encodes to %d different bytes: a corrupt frame", len(body), len(again))
	}
	return resp, nil
}

// roundTrip sends a well-formed request of the setup and returns its answer.
func (c *hostileConn) roundTrip(req kmsg.Request, version int16) (kmsg.Response, error) {
	req.SetVersion(version)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("hostile-setup")).AppendRequest(nil, req, 0)
	corr, err := c.send(frame)
	if err != nil {
		return nil, err
	}
	return c.recv(corr, req)
}

// ---- sequences ----

// setup builds a connection's identity: which of the four sequences run is
// chosen by mask. A step that fails leaves that part of the identity as
// the names alone, which are hostile values too.
func (r *hostileRig) setup(c *hostileConn, mask int) (*hostileIdentity, error) {
	n := r.seq.Add(1)
	id := &hostileIdentity{
		topics:   []string{"hostile-a", "hostile-b"},
		group:    fmt.Sprintf("hostile-g%d", n),
		instance: fmt.Sprintf("hostile-i%d", n),
		cgroup:   fmt.Sprintf("hostile-cg%d", n),
		cmember:  fmt.Sprintf("hostile-cm%d", n),
		sgroup:   fmt.Sprintf("hostile-sg%d", n),
		smember:  fmt.Sprintf("hostile-sm%d", n),
		txnID:    fmt.Sprintf("hostile-t%d", n),
		pid:      -1, pepoch: -1, generation: -1,
	}
	if mask&hostileLongNames != 0 {
		// The setup requests are flexible versions, whose strings may be
		// longer than any non-flexible answer can carry.
		long := hostileLong(40000)
		for _, s := range []*string{&id.group, &id.instance, &id.cgroup, &id.cmember, &id.sgroup, &id.smember, &id.txnID} {
			*s = long[:40000-len(*s)] + *s
		}
	}
	mresp, err := c.roundTrip(&kmsg.MetadataRequest{Topics: []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("hostile-a")}, {Topic: kmsg.StringPtr("hostile-b")}}}, 12)
	if err != nil {
		return nil, fmt.Errorf("setup metadata: %w", err)
	}
	for _, t := range mresp.(*kmsg.MetadataResponse).Topics {
		if t.ErrorCode == 0 {
			id.topicIDs = append(id.topicIDs, t.TopicID)
		}
	}
	steps := []func(*hostileConn, *hostileIdentity) error{setupClassic, setupConsumer, setupShare, setupTxn}
	for i, step := range steps {
		if mask&(1<<i) != 0 {
			if err := step(c, id); err != nil {
				return nil, err
			}
		}
	}
	return id, nil
}

// hostileLongNames in a setup mask makes the identity's names 40,000 bytes.
const hostileLongNames = 0x10

// sweep asks every API that lists or describes what the broker keeps
// (groups, transactions, topics, configs), at every version, for
// everything: state a hostile request stored must still be answerable to
// every client.
func (r *hostileRig) sweep() error {
	c, err := r.dial()
	if err != nil {
		return err
	}
	defer c.nc.Close()
	reqs := []kmsg.Request{
		kmsg.NewPtrListGroupsRequest(), kmsg.NewPtrListTransactionsRequest(), kmsg.NewPtrMetadataRequest(),
		&kmsg.DescribeConfigsRequest{Resources: []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"}}},
	}
	lg, err := c.roundTrip(kmsg.NewPtrListGroupsRequest(), 5)
	if err != nil {
		return r.explain(c, fmt.Errorf("sweep ListGroups v5: %w", err))
	}
	var groups []string
	for _, g := range lg.(*kmsg.ListGroupsResponse).Groups {
		groups = append(groups, g.Group)
	}
	reqs = append(reqs, &kmsg.DescribeGroupsRequest{Groups: groups}, &kmsg.ConsumerGroupDescribeRequest{Groups: groups},
		&kmsg.ShareGroupDescribeRequest{GroupIDs: groups}, &kmsg.OffsetFetchRequest{Group: "hostile-g1"})
	for _, req := range reqs {
		a := apis[req.Key()]
		for v := a.min; v <= a.max; v++ {
			if _, err := c.roundTrip(req, v); err != nil {
				return r.explain(c, fmt.Errorf("sweep %s v%d: %w", kmsg.NameForKey(req.Key()), v, err))
			}
			r.requests.Add(1)
		}
	}
	return nil
}

// setupClassic joins a classic group and syncs.
func setupClassic(c *hostileConn, id *hostileIdentity) error {
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = id.group, 2000, 200, "consumer"
	join.InstanceID = kmsg.StringPtr(id.instance)
	meta := kmsg.ConsumerMemberMetadata{Version: 0, Topics: id.topics}
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	var jr *kmsg.JoinGroupResponse
	for i := 0; i < 2; i++ {
		resp, err := c.roundTrip(join, 9)
		if err != nil {
			return fmt.Errorf("setup join: %w", err)
		}
		jr = resp.(*kmsg.JoinGroupResponse)
		join.MemberID = jr.MemberID
		if jr.ErrorCode != kerr.MemberIDRequired.Code {
			break
		}
	}
	id.member, id.generation = jr.MemberID, jr.Generation
	if jr.ErrorCode != 0 {
		return nil
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation, sync.InstanceID = id.group, id.member, id.generation, join.InstanceID
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: id.member, MemberAssignment: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}
	_, err := c.roundTrip(sync, 5)
	return err
}

// setupConsumer joins a KIP-848 consumer group.
func setupConsumer(c *hostileConn, id *hostileIdentity) error {
	req := hostileHeartbeat(id.cgroup, id.cmember, 0, nil)
	req.SubscribedTopicNames = id.topics
	resp, err := c.roundTrip(req, 1)
	if err != nil {
		return fmt.Errorf("setup consumer heartbeat: %w", err)
	}
	id.cepoch = resp.(*kmsg.ConsumerGroupHeartbeatResponse).MemberEpoch
	return nil
}

// setupShare joins a share group and opens a share session.
func setupShare(c *hostileConn, id *hostileIdentity) error {
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.MemberEpoch, hb.SubscribedTopicNames = id.sgroup, id.smember, 0, id.topics
	resp, err := c.roundTrip(hb, 1)
	if err != nil {
		return fmt.Errorf("setup share heartbeat: %w", err)
	}
	id.sepoch = resp.(*kmsg.ShareGroupHeartbeatResponse).MemberEpoch
	sf := kmsg.NewPtrShareFetchRequest()
	sf.GroupID, sf.MemberID, sf.ShareSessionEpoch = kmsg.StringPtr(id.sgroup), kmsg.StringPtr(id.smember), 0
	sf.MaxWaitMillis, sf.MinBytes, sf.MaxBytes, sf.MaxRecords, sf.BatchSize = 0, 1, 1<<20, 100, 100
	for _, tid := range id.topicIDs {
		sf.Topics = append(sf.Topics, kmsg.ShareFetchRequestTopic{TopicID: tid, Partitions: []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}})
	}
	fresp, err := c.roundTrip(sf, 1)
	if err != nil {
		return fmt.Errorf("setup share fetch: %w", err)
	}
	if fresp.(*kmsg.ShareFetchResponse).ErrorCode == 0 {
		id.ssession = 1
	}
	return nil
}

// setupTxn starts a transaction: a producer id for a transactional id,
// then a partition added to it.
func setupTxn(c *hostileConn, id *hostileIdentity) error {
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr(id.txnID), 5000
	init.ProducerID, init.ProducerEpoch = -1, -1
	resp, err := c.roundTrip(init, 4)
	if err != nil {
		return fmt.Errorf("setup init producer id: %w", err)
	}
	ir := resp.(*kmsg.InitProducerIDResponse)
	id.pid, id.pepoch = ir.ProducerID, ir.ProducerEpoch
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id.txnID, id.pid, id.pepoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "hostile-a", Partitions: []int32{0}}}
	_, err = c.roundTrip(add, 3)
	return err
}

// ---- one run ----

// hostileKeys is every API key the broker advertises, sorted.
func hostileKeys() []int16 {
	var keys []int16
	for k := range apis {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// run sets up an identity on a fresh connection, then sends count hostile
// requests of key at version, pipelined, and checks every answer. A
// connection that never reads its answers instead just sends them.
func (r *hostileRig) run(e *hostileEntropy, key, version int16, count, mask int, neverRead bool) error {
	c, err := r.dial()
	if err != nil {
		return err
	}
	if neverRead {
		defer r.keepIdle(c.nc)
	} else {
		defer c.nc.Close()
	}
	id, err := r.setup(c, mask)
	if err != nil {
		return r.explain(c, err)
	}
	type sent struct {
		req  kmsg.Request
		corr int32
	}
	var inFlight []sent
	for i := 0; i < count; i++ {
		req, frame, ok := hostileRequest(e, id, key, version)
		if !ok {
			continue
		}
		corr, err := c.send(frame)
		if err != nil {
			if neverRead {
				return nil // the broker stopped reading or closed: both are fine
			}
			return r.explain(c, fmt.Errorf("send %s v%d: %w", kmsg.NameForKey(key), version, err))
		}
		if pr, ok := req.(*kmsg.ProduceRequest); ok && pr.Acks == 0 {
			continue // no answer comes
		}
		inFlight = append(inFlight, sent{req, corr})
	}
	if neverRead {
		return nil
	}
	for _, s := range inFlight {
		if _, err := c.recv(s.corr, s.req); err != nil {
			return r.explain(c, fmt.Errorf("%s v%d: %w", kmsg.NameForKey(key), version, err))
		}
		r.requests.Add(1)
	}
	return nil
}

// explain adds what the broker logged about the connection to err, and
// after a timeout the stacks of the broker's goroutines (it runs in this
// process), written to a file.
func (r *hostileRig) explain(c *hostileConn, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		buf := make([]byte, 16<<20)
		buf = buf[:runtime.Stack(buf, true)]
		if f, ferr := os.CreateTemp("", "hostile-stacks-*.txt"); ferr == nil {
			f.Write(buf)
			f.Close()
			err = fmt.Errorf("%w (goroutine stacks in %s)", err, f.Name())
		}
	}
	time.Sleep(50 * time.Millisecond)
	lines := r.logs.lines("client=" + c.nc.LocalAddr().String())
	if len(lines) == 0 {
		return err
	}
	return fmt.Errorf("%w; the broker logged: %s", err, shorten(strings.Join(lines, "\n"), 8<<10))
}

// ---- the deterministic test and the fuzz target ----

// hostileMasks are the setups the deterministic test takes turns with.
var hostileMasks = []int{0, 0b0001, 0b0010, 0b0100, 0b1000}

// TestHostileRequestsEveryAPI sends, for every API key and every version
// the broker advertises, a fixed set of hostile requests (some with
// 10,000-element arrays) after the four setups and after each alone, then
// a connection per API that never reads its answers; four APIs at a time.
// A sweep of the listing APIs ends it.
func TestHostileRequestsEveryAPI(t *testing.T) {
	r := startHostileRig(t)
	keys := hostileKeys()
	var wg sync.WaitGroup
	errs := make(chan error, len(keys)*4)
	work := make(chan int16)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				a := apis[key]
			versions:
				for v := a.min; v <= a.max; v++ {
					// Every version with the four identities, then with
					// one of the other setups in turn; the newest and
					// oldest also with 40,000-byte names.
					masks := []int{0b1111, hostileMasks[int(v)%len(hostileMasks)]}
					if v == a.min || v == a.max {
						masks = append(masks, 0b1111|hostileLongNames)
					}
					for i, mask := range masks {
						e := newHostileEntropy([]byte(fmt.Sprintf("%d/%d/%d", key, v, i)))
						if err := r.run(e, key, v, 3, mask, false); err != nil {
							errs <- err
							break versions // one finding per API is enough
						}
					}
				}
				e := newHostileEntropy([]byte(fmt.Sprintf("%d/never", key)))
				if err := r.run(e, key, a.max, 20, 0, true); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := r.sweep(); err != nil {
		t.Error(err)
	}
	r.finish(t)
	// Runs here peak at well under 100 MiB; the bound catches an
	// allocation sized by a length or count the client chose.
	if peak := r.peakHeap.Load(); peak > hostileMaxHeap {
		t.Errorf("the heap peaked at %d MiB, more than %d MiB", peak>>20, hostileMaxHeap>>20)
	}
}

// hostileMaxHeap is the generous bound on the test process's heap in use.
const hostileMaxHeap = 1 << 30

// FuzzHostileRequests lets the fuzzing engine choose the API, version,
// identity and every value of the hostile requests (run it with
// go test -run '^$' -fuzz '^FuzzHostileRequests$' ./broker/). Every 200
// inputs the listing APIs are swept and the background producer's latest
// acknowledged records checked; all of them are checked at the end.
func FuzzHostileRequests(f *testing.F) {
	keys := hostileKeys()
	for i, k := range keys {
		a := apis[k]
		f.Add([]byte{byte(i), byte(a.max - a.min), 0x0f, 2})
		f.Add([]byte{byte(i), 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	}
	r := startHostileRig(f)
	f.Cleanup(func() { r.finish(f) })
	var inputs atomic.Int64
	var checkedUpTo atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		key := keys[int(data[0])%len(keys)]
		a := apis[key]
		version := a.min + int16(int(data[1])%int(a.max-a.min+1))
		mask, count, neverRead := int(data[2])&0x1f, 1+int(data[3])%4, data[2]&0x80 != 0
		if err := r.run(newHostileEntropy(data[4:]), key, version, count, mask, neverRead); err != nil {
			t.Fatal(err)
		}
		if inputs.Add(1)%200 == 0 {
			if err := r.sweep(); err != nil {
				t.Fatal(err)
			}
			checkedUpTo.Store(r.checkSafeRecords(t, checkedUpTo.Load()))
			r.checkLogs(t)
		}
	})
}
