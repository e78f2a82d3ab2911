package broker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
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

	queue  chan *pending
	queued atomic.Int32 // responses handed to the writer and not yet written

	wmu    sync.Mutex // serialises writes to nc
	w      *bufio.Writer
	wbuf   []byte
	broken bool

	readBuf []byte // request body buffer, reused after produce requests

	stopOnce sync.Once
}

// pending is a request whose response is not written yet.
type pending struct {
	key    int16
	corr   int32
	resp   kmsg.Response // nil: no response is sent (acks=0 produce)
	finish func()        // completes resp before it is written; may be nil
}

// request is what a handler knows about the request it serves.
type request struct {
	conn     *conn
	clientID string
	version  int16
}

// maxPipelined bounds the requests of one connection in flight at once.
const maxPipelined = 32

func newConn(b *Broker, nc net.Conn) *conn {
	return &conn{
		b:     b,
		nc:    nc,
		local: nc.LocalAddr().String(),
		queue: make(chan *pending, maxPipelined),
		w:     bufio.NewWriterSize(nc, 64<<10),
	}
}

func (c *conn) serve() {
	defer c.b.forget(c)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	err := c.readLoop()
	close(c.queue)
	<-writerDone
	c.nc.Close()
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
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

// maxReusedBody bounds the request buffer a connection keeps between requests.
const maxReusedBody = 16 << 20

func (c *conn) readLoop() error {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > c.b.maxRequestSize {
			return protocolError("request of %d bytes is outside 8..%d (socket.request.max.bytes); is this a Kafka client?", size, c.b.maxRequestSize)
		}
		body := c.readBuf
		if int32(cap(body)) < size {
			body = make([]byte, size)
		}
		body = body[:size]
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		p, err := c.handle(body)
		if err != nil {
			return err
		}
		// A produce request's data is in the log once its handler returns, so
		// its buffer can take the next request; other requests may keep
		// references into theirs.
		if p.key == kmsg.Produce.Int16() && size <= maxReusedBody {
			c.readBuf = body
		} else {
			c.readBuf = nil
		}
		if p.finish == nil && c.queued.Load() == 0 {
			if err := c.respond(p, true); err != nil {
				return err
			}
			continue
		}
		c.queued.Add(1)
		c.queue <- p
	}
}

// handle decodes one request and runs its handler's immediate part.
func (c *conn) handle(body []byte) (*pending, error) {
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
	rc := &request{conn: c, version: version}
	if clientID != nil {
		rc.clientID = *clientID
	}
	resp, finish := a.handle(c.b, rc, req)
	return &pending{key: key, corr: corr, resp: resp, finish: finish}, nil
}

func (c *conn) writeLoop() {
	for p := range c.queue {
		if p.finish != nil {
			p.finish()
		}
		c.respond(p, len(c.queue) == 0)
		c.queued.Add(-1)
	}
	c.wmu.Lock()
	if !c.broken {
		c.w.Flush()
	}
	c.wmu.Unlock()
}

// respond encodes and writes one response. After a write error the
// connection is closed and later responses are dropped.
func (c *conn) respond(p *pending, flush bool) error {
	if p.resp == nil {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken {
		return net.ErrClosed
	}
	buf := c.encode(p)
	var err error
	if fr, ok := p.resp.(*fetchResponse); ok && len(fr.regions) > 0 {
		err = c.writeWithRegions(buf, fr, p)
	} else {
		_, err = c.w.Write(buf)
	}
	if err == nil && flush {
		err = c.w.Flush()
	}
	if cap(c.wbuf) > 1<<20 {
		c.wbuf = nil // do not pin a large response's buffer
	}
	if err != nil {
		c.broken = true
		c.nc.Close()
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
