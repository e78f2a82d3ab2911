package s3

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/creek-pipeline/creek/internal/s3client"
)

// object is one object being written: the sink's Write gathers its records
// (under the sink's lock) and its own goroutine compresses and uploads
// them, and stores the object after the partition's previous one.
type object struct {
	s         *Sink
	topic     string
	partition int32
	dir, key  string
	start     int64
	end       int64 // last offset taken
	records   int64
	bytes     int64 // record bytes taken
	opened    time.Time
	forceEnd  int64 // end at this offset, where a stored object ends; -1 for none

	// Guarded by the sink's lock.
	staging []byte     // JSON lines not yet handed over
	rows    *rowBuffer // Parquet rows not yet handed over; nil for JSON
	held    int64
	closed  bool
	aborted bool
	queue   []work

	wake chan struct{}
	prev *object // the partition's previous object
	done chan struct{}
	err  error // set before done is closed
}

// work is one step for an object's goroutine.
type work struct {
	data  []byte     // JSON lines to compress and write
	rows  *rowBuffer // Parquet rows to write as a row group
	close bool       // store the object
	abort bool       // drop it
}

func (s *Sink) newObject(topic string, partition int32, dir string, start int64, prev *object) *object {
	o := &object{s: s, topic: topic, partition: partition, dir: dir, start: start, end: start - 1,
		key: s.layout.key(dir, topic, partition, start), opened: time.Now(), forceEnd: -1,
		wake: make(chan struct{}, 1), prev: prev, done: make(chan struct{})}
	if s.cfg.Format == "parquet" {
		o.rows = &rowBuffer{tweets: s.cfg.Columns == "tweet"}
	}
	return o
}

// enqueue hands work to the goroutine; called with the sink's lock held.
func (o *object) enqueue(w work) {
	o.queue = append(o.queue, w)
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *object) next() work {
	for {
		o.s.mu.Lock()
		if len(o.queue) > 0 {
			w := o.queue[0]
			o.queue[0] = work{}
			o.queue = o.queue[1:]
			o.s.mu.Unlock()
			return w
		}
		o.s.mu.Unlock()
		<-o.wake
	}
}

// account changes the bytes the object holds by delta.
func (o *object) account(delta int) {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	if delta > 0 {
		o.s.hold(o, delta)
	} else if delta < 0 {
		o.s.release(o, -delta)
	}
}

// Chunk buffers are reused: allocating (and zeroing) 300 KiB for each
// chunk cost a tenth of the sink's CPU.
var chunks = sync.Pool{New: func() any { b := make([]byte, 0, chunkCap); return &b }}

const chunkCap = chunkSize + chunkSize/4

func getChunk() []byte { return (*chunks.Get().(*[]byte))[:0] }

func putChunk(b []byte) {
	if cap(b) == chunkCap {
		b = b[:0]
		chunks.Put(&b)
	}
}

// errPrevious stops an object whose predecessor was not stored: storing it
// would leave a hole before it.
var errPrevious = errors.New("the partition's previous object was not stored")

func (o *object) run() {
	s := o.s
	defer s.wg.Done()
	defer close(o.done)
	ctx := s.ctx
	w := &s3client.ObjectWriter{Client: s.client, Bucket: s.bucket, Key: o.key, PartSize: s.cfg.PartSize, ContentType: contentType(s.cfg), Release: putChunk, Requests: s.requests}
	var pq *parquetFile
	if o.rows != nil {
		pq = newParquetFile(ctx, w, o.rows.tweets, s.cfg.Compression)
	}
	var failed error
	// write runs one step and keeps the memory count: the step's input is
	// released, and what the writer buffers afterwards is held.
	write := func(in int, step func() error) {
		before := w.Buffered()
		if failed == nil {
			failed = step()
		}
		o.account(w.Buffered() - before - in)
	}
	for {
		item := o.next()
		switch {
		case item.data != nil:
			write(cap(item.data), func() error {
				if _, none := s.comp.(noCompression); none {
					return w.WriteOwned(ctx, item.data)
				}
				out := s.comp.compress(getChunk(), item.data)
				putChunk(item.data)
				return w.WriteOwned(ctx, out)
			})
		case item.rows != nil:
			write(item.rows.size(), func() error { return pq.write(item.rows) })
		case item.abort:
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			w.Abort(actx)
			cancel()
			o.err = errors.New("aborted")
			o.account(-int(o.heldNow()))
			return
		case item.close:
			if failed == nil && pq != nil {
				write(0, pq.close)
			}
			if failed == nil && o.prev != nil {
				<-o.prev.done
				if o.prev.err != nil {
					failed = errPrevious
				}
			}
			if failed == nil && o.isAborted() {
				failed = errors.New("aborted")
			}
			if failed == nil {
				failed = w.Close(ctx)
			}
			if failed != nil {
				actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				w.Abort(actx)
				cancel()
			}
			o.err = failed
			o.finished(failed)
			return
		}
	}
}

func (o *object) heldNow() int64 {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	return o.held
}

func (o *object) isAborted() bool {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	return o.aborted
}

// finished commits a stored object's offsets, or records why it was not
// stored; either way its memory is released.
func (o *object) finished(err error) {
	s := o.s
	if err == nil {
		if s.pos != nil && s.pos.Commit != nil {
			s.pos.Commit(o.topic, o.partition, o.end+1)
		}
		s.log.Debug("s3 sink: stored", "key", o.key, "records", o.records, "first", o.start, "last", o.end)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release(o, int(o.held))
	if err != nil && !errors.Is(err, errPrevious) && !o.aborted && !errors.Is(err, context.Canceled) {
		s.fail(fmt.Errorf("s3 sink: %w (its records are not committed and are read again next time)", err))
	}
}

func contentType(cfg Config) string {
	switch {
	case cfg.Format == "parquet":
		return "application/vnd.apache.parquet"
	case cfg.Compression == "gzip" || cfg.Compression == "":
		return "application/gzip"
	case cfg.Compression == "zstd":
		return "application/zstd"
	}
	return "application/x-ndjson"
}
