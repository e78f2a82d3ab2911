package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// robustLogs is a goroutine-safe buffer for the broker's log.
type robustLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *robustLogs) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *robustLogs) lines(containing string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, l := range strings.Split(w.buf.String(), "\n") {
		if strings.Contains(l, containing) {
			out = append(out, l)
		}
	}
	return out
}

func (w *robustLogs) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// robustFrame frames a request the way a client would: size, then key,
// version, correlation id, client id and body (non-flexible header v1).
func robustFrame(key, version int16, body []byte) []byte {
	b := []byte{0, 0, 0, 0}
	b = kbin.AppendInt16(b, key)
	b = kbin.AppendInt16(b, version)
	b = kbin.AppendInt32(b, 1)
	b = kbin.AppendNullableString(b, kmsg.StringPtr("robust"))
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// robustEncode encodes a valid request at a version.
func robustEncode(req kmsg.Request, version int16) []byte {
	req.SetVersion(version)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("robust")).AppendRequest(nil, req, 1)
}

// robustGoodClient produces and consumes without pause, remembering every
// error it sees, until stopped.
type robustGoodClient struct {
	stop     chan struct{}
	done     chan struct{}
	produced atomic.Int64
	consumed atomic.Int64
	mu       sync.Mutex
	errs     []error
}

func (g *robustGoodClient) fail(err error) {
	g.mu.Lock()
	g.errs = append(g.errs, err)
	g.mu.Unlock()
}

func startRobustGoodClient(t *testing.T, addr, topic string) *robustGoodClient {
	t.Helper()
	g := &robustGoodClient{stop: make(chan struct{}), done: make(chan struct{})}
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	producerDone := make(chan struct{})
	go func() { // producer
		defer wg.Done()
		defer close(producerDone)
		for i := 0; ; i++ {
			select {
			case <-g.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var recs []*kgo.Record
			for j := 0; j < 10; j++ {
				recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("good-%d-%d", i, j))})
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				g.fail(fmt.Errorf("produce: %w", err))
			} else {
				g.produced.Add(int64(len(recs)))
			}
			cancel()
		}
	}()
	go func() { // consumer: reads until it has everything produced before the stop
		defer wg.Done()
		next := int64(0)
		var drainUntil time.Time
		for {
			if drainUntil.IsZero() {
				select {
				case <-producerDone: // its last produce is answered: produced is final
					drainUntil = time.Now().Add(10 * time.Second)
				default:
				}
			}
			if !drainUntil.IsZero() && (g.consumed.Load() >= g.produced.Load() || time.Now().After(drainUntil)) {
				return
			}
			// A poll that finds nothing new within its time is not an error.
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := cons.PollFetches(ctx)
			cancel()
			for _, fe := range fs.Errors() {
				if !errors.Is(fe.Err, context.DeadlineExceeded) {
					g.fail(fmt.Errorf("consume: %w", fe.Err))
				}
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != next {
					g.fail(fmt.Errorf("consumed offset %d, want %d", r.Offset, next))
				}
				next = r.Offset + 1
				g.consumed.Add(1)
			})
		}
	}()
	go func() {
		wg.Wait()
		prod.Close()
		cons.Close()
		close(g.done)
	}()
	return g
}

func (g *robustGoodClient) finish(t *testing.T) {
	t.Helper()
	close(g.stop)
	select {
	case <-g.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("good client did not finish: produced %d, consumed %d", g.produced.Load(), g.consumed.Load())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.errs) > 0 {
		t.Errorf("the well-behaved client saw %d errors while others misbehaved, first: %v", len(g.errs), errors.Join(g.errs[:min(len(g.errs), 5)]...))
	}
	if g.produced.Load() == 0 || g.consumed.Load() != g.produced.Load() {
		t.Errorf("the well-behaved client produced %d and consumed %d records", g.produced.Load(), g.consumed.Load())
	}
}

// robustExpectClosed reads from a connection the broker should close
// without answering: the read must end in EOF or a reset, not data or a
// timeout.
func robustExpectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1024)
	var got []byte
	for {
		n, err := nc.Read(buf)
		got = append(got, buf[:n]...)
		if err == nil {
			continue
		}
		if len(got) > 0 {
			t.Errorf("the broker answered %d bytes (%q) before closing", len(got), got[:min(len(got), 64)])
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		case errors.Is(err, syscall.EPIPE):
		default:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("the broker kept the connection open for 10s")
			} else {
				t.Errorf("read: %v, want EOF or connection reset", err)
			}
		}
		return
	}
}

// TestRobustBadClientsAreClosed sends the broker what a Kafka broker
// meets in the wild (an HTTP request, a TLS handshake, frames too large or
// cut short, unknown APIs and versions, bodies that do not decode) while a
// well-behaved franz-go client keeps producing and consuming. Each bad
// connection must be closed with one log line naming it; the good client
// must never notice.
func TestRobustBadClientsAreClosed(t *testing.T) {
	logs := &robustLogs{}
	b, err := Start(context.Background(), Config{
		Listen:   "127.0.0.1:0",
		DataDir:  t.TempDir(),
		Settings: map[string]string{"socket.request.max.bytes": "1048576"},
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	adm, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(adm).CreateTopic(context.Background(), 1, 1, nil, "robust-good"); err != nil {
		t.Fatal(err)
	}
	adm.Close()
	good := startRobustGoodClient(t, b.Addr(), "robust-good")
	for good.consumed.Load() < 100 {
		time.Sleep(5 * time.Millisecond)
	}

	size := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	metadata := kmsg.NewPtrMetadataRequest()
	metadata.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("robust-good")}}
	validMetadata := robustEncode(metadata, 4)
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 1000
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: "robust-good", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: bytes.Repeat([]byte{1}, 80)}}}}
	validProduce := robustEncode(produce, 7)
	// A produce frame cut inside its body, with the size field fixed up so
	// the frame itself is complete.
	cutProduce := append([]byte(nil), validProduce[:len(validProduce)-40]...)
	binary.BigEndian.PutUint32(cutProduce, uint32(len(cutProduce)-4))

	cases := []struct {
		name      string
		send      []byte
		halfClose bool // close our sending side after the bytes
		reason    string
	}{
		{"http request", []byte("GET / HTTP/1.1\r\nHost: localhost:9092\r\n\r\n"), false, "outside 8..1048576"},
		{"tls client hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}, false, "outside 8..1048576"},
		{"random bytes", []byte{0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}, false, "outside 8..1048576"},
		{"frame over socket.request.max.bytes", append(size(1048577), 0, 0, 0, 0, 0, 0, 0, 0), false, "request of 1048577 bytes"},
		{"frame of 2 GiB", append(size(0x7fffffff), 0, 18, 0, 3), false, "request of 2147483647 bytes"},
		{"negative size", size(0xffffffff), false, "request of -1 bytes"},
		{"frame shorter than a header", append(size(4), 0, 18, 0, 0), false, "request of 4 bytes"},
		{"truncated frame then close", append(size(100), robustFrame(18, 0, nil)[4:14]...), true, "unexpected EOF"},
		{"size field cut then close", []byte{0, 0}, true, "unexpected EOF"},
		{"header cut inside the client id", append(size(12), 0, 3, 0, 1, 0, 0, 0, 1, 0, 20, 'a', 'b'), false, "request header is truncated"},
		{"unknown api key 9999", robustFrame(9999, 0, nil), false, "unknown or unsupported API key 9999"},
		{"negative api key", robustFrame(-1, 0, nil), false, "unknown or unsupported API key -1"},
		{"produce v2 cut short", robustFrame(0, 2, []byte{0xff, 0xff, 0, 1, 0, 0, 0x03, 0xe8, 0, 0, 0, 0}), false, "malformed Produce v2 request"},
		{"fetch v3", robustFrame(1, 3, nil), false, "Fetch version 3 is not supported"},
		{"metadata v99", robustFrame(3, 99, nil), false, "Metadata version 99 is not supported"},
		{"metadata with a topic array longer than the frame", robustFrame(3, 4, []byte{0x7f, 0xff, 0xff, 0xff}), false, "malformed Metadata v4 request"},
		{"metadata v4 cut short", validMetadata[:len(validMetadata)-3], true, "unexpected EOF"},
		{"produce body cut short", cutProduce, false, "malformed Produce v7 request"},
		{"valid request then garbage", append(append([]byte(nil), validMetadata...), "garbage!"...), false, "outside 8..1048576"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			local := nc.LocalAddr().String()
			if _, err := nc.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.halfClose {
				nc.(*net.TCPConn).CloseWrite()
			}
			if strings.HasPrefix(tc.name, "valid request") {
				// The valid request is answered first; then the garbage closes the connection.
				robustSkipResponse(t, nc)
			}
			robustExpectClosed(t, nc)

			deadline := time.Now().Add(5 * time.Second)
			var lines []string
			for {
				lines = logs.lines("client=" + local)
				if len(lines) > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			lines = logs.lines("client=" + local)
			if len(lines) != 1 {
				t.Fatalf("want one log line for the connection from %s, got %d:\n%s", local, len(lines), strings.Join(lines, "\n"))
			}
			if !strings.Contains(lines[0], "closing client connection") || !strings.Contains(lines[0], tc.reason) {
				t.Errorf("log line does not say %q:\n%s", tc.reason, lines[0])
			}
		})
	}

	good.finish(t)
	if n := len(logs.lines("closing client connection")); n != len(cases) {
		t.Errorf("%d connections were closed with a log line, want %d (one per bad client):\n%s", n, len(cases), logs)
	}
	t.Logf("the good client produced and consumed %d records meanwhile", good.consumed.Load())
}

// robustSkipResponse reads one response frame.
func robustSkipResponse(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var sz [4]byte
	if _, err := io.ReadFull(nc, sz[:]); err != nil {
		t.Fatalf("no response to the valid request: %v", err)
	}
	if _, err := io.ReadFull(nc, make([]byte, binary.BigEndian.Uint32(sz[:]))); err != nil {
		t.Fatalf("response cut short: %v", err)
	}
}

// TestRobustBadRecordsAreAnswered checks the other side of the line: a
// well-framed request whose records are garbage is a client error, answered
// with INVALID_RECORD (as Kafka does), and the connection keeps serving.
func TestRobustBadRecordsAreAnswered(t *testing.T) {
	logs := &robustLogs{}
	b, err := Start(context.Background(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	nc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	roundTrip := func(req kmsg.Request, version int16) kmsg.Response {
		t.Helper()
		if _, err := nc.Write(robustEncode(req, version)); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		var sz [4]byte
		if _, err := io.ReadFull(nc, sz[:]); err != nil {
			t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
		}
		body := make([]byte, binary.BigEndian.Uint32(sz[:]))
		if _, err := io.ReadFull(nc, body); err != nil {
			t.Fatal(err)
		}
		resp := req.ResponseKind()
		if err := resp.ReadFrom(body[4:]); err != nil { // non-flexible versions: header is the correlation id
			t.Fatal(err)
		}
		return resp
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "robust-bad-records", NumPartitions: 1, ReplicationFactor: 1}}
	roundTrip(create, 4)
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 1000
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: "robust-bad-records", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: bytes.Repeat([]byte{2}, 80)}}}}
	pr := roundTrip(produce, 7).(*kmsg.ProduceResponse)
	if code := pr.Topics[0].Partitions[0].ErrorCode; code != 87 { // INVALID_RECORD, as Kafka answers: no whole batch
		t.Errorf("garbage records: error code %d, want 87 (INVALID_RECORD)", code)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("robust-bad-records")}}
	mr := roundTrip(meta, 4).(*kmsg.MetadataResponse)
	if len(mr.Brokers) != 1 || len(mr.Topics) != 1 || mr.Topics[0].ErrorCode != 0 {
		t.Errorf("metadata after the bad produce: %+v", mr)
	}
	if lines := logs.lines("closing client connection"); len(lines) != 0 {
		t.Errorf("connection closed: %v", lines)
	}
}
