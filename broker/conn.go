package broker

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/auth"
)

// A connection is served by two goroutines. The reader decodes requests in
// order and runs each handler's immediate part (produce appends happen
// here, so a connection's writes land in the order sent). The writer runs
// each handler's deferred part (waiting for fsync, long-polling a fetch),
// then writes the responses in request order, as the protocol requires.
// Pipelined produce requests therefore share fsyncs instead of queueing.
// A response with no deferred part and nothing queued before it is written
// by the reader itself, sparing a goroutine handoff.
type conn struct {
	b     *Broker
	nc    net.Conn
	local string // the address the client dialed, advertised when none is configured

	listener   *listener
	host       string    // the client's IP address, as ACLs name hosts
	principal  string    // who the client is: User:ANONYMOUS until it authenticates
	sasl       *saslConn // nil on listeners without SASL
	closeAfter bool      // close once the current request is answered (a failed login)

	queue  chan *pending
	queued atomic.Int32 // responses handed to the writer and not yet written

	wmu    sync.Mutex // serialises writes to nc
	w      *bufio.Writer
	wbuf   []byte
	broken bool

	gone     chan struct{} // closed when the reader stops: waits on this connection's behalf may end
	stopOnce sync.Once

	// mutedUntil (Unix nanoseconds) is when a client over its quota may
	// send again: the reader waits until then before the next request.
	mutedUntil atomic.Int64
}

// muteFor holds back the connection's next request for d (a quota throttle).
func (c *conn) muteFor(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := c.mutedUntil.Load()
		if cur >= until || c.mutedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// waitIfMuted sleeps out a quota throttle, or until the broker stops.
func (c *conn) waitIfMuted() {
	until := c.mutedUntil.Load()
	if until == 0 {
		return
	}
	if d := time.Until(time.Unix(0, until)); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.b.closing:
			t.Stop()
		}
	}
}

// pending is a request whose response is not written yet.
type pending struct {
	key      int16
	version  int16
	corr     int32
	clientID string
	resp     kmsg.Response // nil: no response is sent (acks=0 produce)
	finish   func()        // completes resp before it is written; may be nil

	arrived time.Time // when the request was read, for the metrics
	size    int       // the request's bytes, framing included
}

// request is what a handler knows about the request it serves.
type request struct {
	conn     *conn
	clientID string
	version  int16
	// mayRead, set by Fetch's gate when ACLs are enforced, says whether
	// the client may read a topic: a fetch in a session reads partitions
	// the request does not name, so it checks each one it reads.
	mayRead func(topic string) bool
}

// maxPipelined bounds the requests of one connection in flight at once.
const maxPipelined = 32

func newConn(b *Broker, nc net.Conn, l *listener) *conn {
	c := &conn{
		b:         b,
		nc:        nc,
		local:     nc.LocalAddr().String(),
		listener:  l,
		principal: auth.Anonymous,
		queue:     make(chan *pending, maxPipelined),
		w:         bufio.NewWriterSize(deadlineWriter{nc, b.writeTimeout}, 64<<10),
		gone:      make(chan struct{}),
	}
	c.host, _, _ = net.SplitHostPort(nc.RemoteAddr().String())
	if l.Protocol.SASL() {
		c.sasl = &saslConn{}
	}
	return c
}

// deadlineWriter writes to a connection in pieces of at most
// deadlinePiece bytes, each with a fresh write deadline: a client that
// reads its answers slowly but steadily is served, one that stops reading
// them is cut off after the timeout instead of holding its connection's
// goroutines and buffers forever.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

const deadlinePiece = 1 << 20

// refresh gives the next piece its time (none when timeout is 0).
func (w deadlineWriter) refresh() {
	if w.timeout > 0 {
		w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
	}
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		piece := p[:min(len(p), deadlinePiece)]
		w.refresh()
		m, err := w.nc.Write(piece)
		n += m
		p = p[m:]
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (c *conn) serve() {
	defer c.b.forget(c)
	if tc, ok := c.nc.(*tls.Conn); ok {
		if err := c.startTLS(tc); err != nil {
			c.b.logger.Warn("closing client connection", "client", c.nc.RemoteAddr().String(), "reason", err)
			c.nc.Close()
			close(c.gone)
			return
		}
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	err := c.readLoop()
	// The client is gone (or broke the protocol): waits on its behalf end
	// now, not when their timeouts (which it chose) run out.
	close(c.gone)
	c.b.shares.ConnectionClosed(c)
	close(c.queue)
	<-writerDone
	c.nc.Close()
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, errLogged) {
		c.b.logger.Warn("closing client connection", "client", c.nc.RemoteAddr().String(), "reason", err)
	}
}

// stopReading makes the reader stop at the next request boundary (shutdown).
func (c *conn) stopReading() {
	c.stopOnce.Do(func() { c.nc.SetReadDeadline(time.Now()) })
}

// errProtocol marks a client that broke the protocol; its connection closes.
type errProtocol struct{ msg string }

func (e errProtocol) Error() string { return e.msg }

func protocolError(format string, args ...any) error {
	return errProtocol{fmt.Sprintf(format, args...)}
}

// errLogged ends a connection whose reason was logged where it happened
// (a panic, a client that stopped reading its answers).
var errLogged = errors.New("connection closed; the reason was logged")

// panicked logs a panic recovered while serving p. The connection it came
// from is closed by the caller; every other client goes on being served.
func (c *conn) panicked(p *pending, step string, v any) error {
	c.b.logger.Error("panic while serving a request; closing that client's connection",
		"api", kmsg.NameForKey(p.key), "version", p.version, "step", step,
		"client", c.nc.RemoteAddr().String(), "client_id", p.clientID,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return errLogged
}

// breakConn closes the connection after a failure in the writer: later
// responses are dropped, and the reader stops at its next read.
func (c *conn) breakConn() {
	c.wmu.Lock()
	c.broken = true
	c.wmu.Unlock()
	c.nc.Close()
}

// bodyStep is the most a request's buffer grows ahead of the bytes that
// have arrived.
const bodyStep = 1 << 20

// readBody reads a request body of size bytes, into a pooled buffer if
// one is free. A new buffer grows as the bytes arrive, so a length prefix
// alone (up to socket.request.max.bytes) cannot make the broker allocate
// memory the client never sends.
func (c *conn) readBody(r io.Reader, size int) ([]byte, error) {
	body := pooledBody(size)
	for len(body) < size {
		if len(body) == cap(body) {
			next := min(size, max(bodyStep, 2*cap(body)))
			if next == size {
				next = pooledCapacity(size) // the last step: room for the pool's class, so the buffer can serve the next request of that class
			}
			body = slices.Grow(body, next-len(body))
		}
		n, err := io.ReadFull(r, body[len(body):min(size, cap(body))])
		body = body[:len(body)+n]
		if err != nil {
			return nil, err
		}
	}
	return body, nil
}

func (c *conn) readLoop() error {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		c.waitIfMuted()
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if c.sasl != nil && !c.sasl.authenticated {
			if err := c.unauthenticatedFrame(r, size); err != errNotRaw {
				if err != nil {
					return err
				}
				continue
			}
		}
		if size < 8 || size > c.b.maxRequestSize {
			return protocolError("request of %d bytes is outside 8..%d (socket.request.max.bytes); is this a Kafka client?", size, c.b.maxRequestSize)
		}
		if size > c.b.maxOtherRequestSize {
			// Only record data needs large requests; a large request of
			// another API is mostly tiny array elements, each decoding
			// to a struct many times its size.
			head, err := r.Peek(2)
			if err != nil {
				return err
			}
			if key := int16(binary.BigEndian.Uint16(head)); key != kmsg.Produce.Int16() {
				return protocolError("%s request of %d bytes is larger than %d (request.max.bytes.non.produce)", kmsg.NameForKey(key), size, c.b.maxOtherRequestSize)
			}
		}
		if !c.b.requestBudget.take(int64(size), c.b.closing) {
			return net.ErrClosed
		}
		body, err := c.readBody(r, int(size))
		if err != nil {
			c.b.requestBudget.give(int64(size))
			return err
		}
		var arrived time.Time
		if c.b.metrics != nil {
			arrived = time.Now()
		}
		p, err := c.handle(body)
		c.b.requestBudget.give(int64(size))
		if err != nil {
			return err
		}
		p.arrived, p.size = arrived, int(size)+4
		// A produce request's data is in the log once its handler returns, so
		// its buffer can take any connection's next request; other requests
		// may keep references into theirs.
		if p.key == kmsg.Produce.Int16() {
			recycleBody(body)
		}
		if p.finish == nil && c.queued.Load() == 0 {
			if err := c.respond(p, true); err != nil {
				return err
			}
		} else {
			c.queued.Add(1)
			c.queue <- p
		}
		if c.closeAfter {
			return errLogged
		}
	}
}

// handle decodes one request and runs its handler's immediate part. A
// panic in the handler is logged and closes this connection only.
func (c *conn) handle(body []byte) (p *pending, err error) {
	rd := kbin.Reader{Src: body}
	key, version, corr := rd.Int16(), rd.Int16(), rd.Int32()
	clientID := rd.NullableString()
	if !rd.Ok() {
		return nil, protocolError("request header is truncated")
	}
	a, ok := apis[key]
	if !ok {
		return nil, protocolError("unknown or unsupported API key %d (%s)", key, kmsg.NameForKey(key))
	}
	if key == kmsg.ApiVersions.Int16() && version > a.max {
		// KIP-511: answer a too-new ApiVersions with v0 so the client retries
		// at a version we speak.
		return &pending{key: key, corr: corr, resp: apiVersionsUnsupported()}, nil
	}
	if version < a.min || version > a.max {
		return nil, protocolError("%s version %d is not supported (supported: %d to %d)", kmsg.NameForKey(key), version, a.min, a.max)
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&rd)
	}
	if err := req.ReadFrom(rd.Src); err != nil {
		return nil, protocolError("malformed %s v%d request: %v", kmsg.NameForKey(key), version, err)
	}
	if c.sasl != nil {
		if err := c.sasl.allows(key, time.Now); err != nil {
			return nil, err
		}
	}
	rc := &request{conn: c, version: version}
	if clientID != nil {
		rc.clientID = *clientID
	}
	p = &pending{key: key, version: version, corr: corr, clientID: rc.clientID}
	defer func() {
		if v := recover(); v != nil {
			p, err = nil, c.panicked(p, "handling", v)
		}
	}()
	answerOnce(req)
	p.resp, p.finish = c.b.authorized(a, rc, req)
	return p, nil
}

func (c *conn) writeLoop() {
	for p := range c.queue {
		c.finishAndRespond(p, len(c.queue) == 0)
		c.queued.Add(-1)
	}
	c.wmu.Lock()
	if !c.broken {
		c.w.Flush()
	}
	c.wmu.Unlock()
}

// finishAndRespond completes a queued response and writes it. A panic in
// either step closes this connection only.
func (c *conn) finishAndRespond(p *pending, flush bool) {
	defer func() {
		if v := recover(); v != nil {
			c.panicked(p, "finishing", v)
			c.breakConn()
		}
	}()
	if p.finish != nil {
		p.finish()
	}
	c.respond(p, flush)
}

// respond encodes and writes one response. After a write error or a panic
// the connection is closed and later responses are dropped.
func (c *conn) respond(p *pending, flush bool) (err error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken {
		return net.ErrClosed
	}
	defer func() {
		if v := recover(); v != nil {
			err = c.panicked(p, "encoding", v)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.b.logger.Warn("closing client connection", "client", c.nc.RemoteAddr().String(), "client_id", p.clientID,
				"reason", fmt.Sprintf("it has not read its answers for %v (socket.write.timeout.ms)", c.b.writeTimeout))
			err = errLogged
		}
		if err != nil {
			c.broken = true
			c.nc.Close()
		}
	}()
	// An acks=0 produce has nothing to write, but the answers buffered
	// before it must still go out if it was the last one queued.
	if p.resp != nil {
		if !p.resp.IsFlexible() {
			c.fitStrings(p)
		}
		buf := c.encode(p)
		sent := len(buf)
		if fr, ok := p.resp.(*fetchResponse); ok && len(fr.regions) > 0 {
			err = c.writeWithRegions(buf, fr, p)
			for _, r := range fr.regions {
				sent += int(r.chunk.Len) - len(placeholder)
			}
		} else {
			_, err = c.w.Write(buf)
		}
		if m := c.b.metrics; m != nil {
			m.Errors(p.key, p.resp)
			m.Request(p.key, p.version, p.size, sent, time.Since(p.arrived))
		}
	} else if m := c.b.metrics; m != nil {
		m.Request(p.key, p.version, p.size, 0, time.Since(p.arrived))
	}
	if cap(c.wbuf) > 1<<20 {
		c.wbuf = nil // do not pin a large response's buffer
	}
	if err == nil && flush {
		err = c.w.Flush()
	}
	return err
}

// encode frames a response: size, correlation id, header tags (flexible
// versions except ApiVersions, whose response header is always v0), body.
func (c *conn) encode(p *pending) []byte {
	buf := append(c.wbuf[:0], 0, 0, 0, 0)
	buf = kbin.AppendInt32(buf, p.corr)
	if p.resp.IsFlexible() && p.key != kmsg.ApiVersions.Int16() {
		buf = append(buf, 0) // empty tagged fields of response header v1
	}
	buf = p.resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	c.wbuf = buf
	return buf
}
