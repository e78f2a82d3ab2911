// Package s3 is the sink that archives Kafka topics to S3 (or an
// S3-compatible store) as Kafka Connect's S3 sink lays them out: one
// object per run of a partition's records, named by topic, partition and
// start offset, as JSON lines (gzip, zstd or plain) or Parquet.
//
// Exactly once in the bucket: an object is stored whole (a completed
// multipart upload or a single PutObject) before the offsets it holds are
// committed, a partition's objects are completed in offset order, and a
// consumer that restarts from the last commit looks in the bucket and
// closes its objects where the stored ones end, so it writes the same
// names over the same offsets. An object still open when the sink stops
// or loses its partition is aborted and not committed; the next reader of
// the partition writes it again under the same name.
//
// Memory is bounded whatever the number of partitions: objects stream
// through multipart upload parts, and when the records held for open
// objects reach the sink's memory budget the largest open object is
// closed early.
package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/recordjson"
	"github.com/creek-pipeline/creek/internal/s3client"
)

func init() {
	pipeline.RegisterSink(pipeline.Plugin{
		Name: "s3",
		Doc:  "Archives Kafka topics to S3 or an S3-compatible store, in Kafka Connect's layout, exactly once in the bucket.",
		Options: []pipeline.Option{
			{Name: "bucket", Flag: "s3-bucket", Type: pipeline.TypeString, Doc: "Bucket to write to (required); it must exist (creek s3 mb s3://BUCKET)."},
			{Name: "prefix", Flag: "s3-prefix", Type: pipeline.TypeString, Doc: "Folder in the bucket that the topics' folders go under."},
			{Name: "region", Flag: "s3-region", Env: []string{"AWS_REGION", "AWS_DEFAULT_REGION"}, Type: pipeline.TypeString,
				Doc: "The bucket's region; default: the profile's, else the EC2 instance's, else us-east-1."},
			{Name: "endpoint", Flag: "s3-endpoint", Env: []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}, Type: pipeline.TypeString,
				Doc: "URL of an S3-compatible store (versitygw, MinIO, Ceph...), addressed path-style; default AWS."},
			{Name: "profile", Flag: "s3-profile", Env: []string{"AWS_PROFILE"}, Type: pipeline.TypeString,
				Doc: "Shared-config profile for credentials; default: AWS's chain (environment, profile, web identity, ECS, EC2 instance role)."},
			{Name: "format", Flag: "s3-format", Type: pipeline.TypeString, Default: "json", Enum: []string{"json", "parquet"},
				Doc: "json: JSON lines as the file sink writes them; parquet: a column per record field, the value as JSON text."},
			{Name: "compression", Flag: "s3-compression", Type: pipeline.TypeString, Default: "gzip", Enum: []string{"gzip", "zstd", "none"},
				Doc: "For json the whole object (.json.gz, .json.zst); for parquet its pages."},
			{Name: "columns", Flag: "s3-columns", Type: pipeline.TypeString, Default: "record", Enum: []string{"record", "tweet"},
				Doc: "Parquet columns: record (topic, partition, offset, timestamp, key, value, headers), or tweet: those and typed tweet_id, created_at, lang, author_id, username, text read from X API v2 JSON."},
			{Name: "flush-records", Flag: "s3-flush-records", Type: pipeline.TypeInt, Default: "10000", Doc: "Close an object after this many records."},
			{Name: "flush-bytes", Flag: "s3-flush-bytes", Type: pipeline.TypeString, Default: "64MiB",
				Doc: "Close an object once its records (keys, values, headers) reach this size, before compression."},
			{Name: "flush-interval", Flag: "s3-flush-interval", Type: pipeline.TypeDuration, Default: "1m",
				Doc: "Close an object this long after its first record arrived, by the wall clock, even if no more records come."},
			{Name: "partition-by", Flag: "s3-partition-by", Type: pipeline.TypeString, Default: "offset", Enum: []string{"offset", "time"},
				Doc: "offset: TOPIC/partition=N/; time: TOPIC/dt=YYYY-MM-DD/hour=HH/ by record timestamp (UTC)."},
			{Name: "uploads", Flag: "s3-uploads", Type: pipeline.TypeInt, Default: strconv.Itoa(defaultUploads),
				Doc: "Most requests that store data (parts and whole objects) in flight at once, over all partitions: more helps against a distant region's latency, fewer keeps connections few."},
			{Name: "memory", Flag: "s3-memory", Type: pipeline.TypeString, Default: "64MiB",
				Doc: "Most bytes of records the consumer holds, whatever the number of partitions: three quarters for open objects (at the limit the largest is closed early), a quarter for the fetches that feed them."},
		},
		NewSink: func(v *pipeline.Values, env pipeline.Env) (pipeline.Sink, error) {
			cfg := Config{
				Bucket: v.String("bucket"), Prefix: v.String("prefix"),
				Client: s3client.Options{Region: v.String("region"), Endpoint: v.String("endpoint"), Profile: v.String("profile")},
				Format: v.String("format"), Compression: v.String("compression"), Columns: v.String("columns"),
				FlushRecords: v.Int("flush-records"), FlushInterval: v.Duration("flush-interval"), PartitionBy: v.String("partition-by"),
				Uploads: int(v.Int("uploads")),
			}
			if cfg.Uploads < 1 {
				return nil, fmt.Errorf("uploads %d: want at least 1 request in flight", cfg.Uploads)
			}
			var err error
			if cfg.FlushBytes, err = pipeline.ParseSize(v.String("flush-bytes")); err != nil {
				return nil, fmt.Errorf("flush-bytes: %w", err)
			}
			if cfg.Memory, err = pipeline.ParseSize(v.String("memory")); err != nil {
				return nil, fmt.Errorf("memory: %w", err)
			}
			return New(context.Background(), cfg, env.Logger)
		},
	})
}

// Config configures the sink.
type Config struct {
	Bucket, Prefix string
	Client         s3client.Options
	Format         string // json or parquet
	Compression    string // gzip, zstd or none
	Columns        string // parquet: record or tweet
	FlushRecords   int64
	FlushBytes     int64
	FlushInterval  time.Duration
	PartitionBy    string // offset or time
	// Memory bounds the records held: objectShare of it for open objects,
	// the rest for the source's fetches (see UsePositions).
	Memory int64

	// Uploads bounds the requests that store data in flight at once:
	// without a bound, a small memory budget over many partitions means
	// as many small objects being stored at once, each on a connection of
	// its own. 0 for defaultUploads.
	Uploads int

	// PartSize is the multipart part size; 0 for S3's smallest, 5 MiB.
	PartSize int
	// CloseTimeout bounds how long Close waits for open objects to be
	// stored; what is not stored by then is aborted (and read again by
	// the next run). 0 for 30 s.
	CloseTimeout time.Duration
}

// chunkSize is how much of an object's encoded records is gathered before
// it is compressed and written: small enough that a hundred open objects
// hold little, large enough to compress well (gzip's window is 32 KiB).
const chunkSize = 256 << 10

// defaultUploads is --s3-uploads' default: enough requests at once to
// hide a distant region's latency behind each other.
const defaultUploads = 16

// objectShare is the quarters of Config.Memory that open objects may hold.
const objectShare = 3

// Sink archives records to S3.
type Sink struct {
	cfg    Config
	bucket string
	client *s3client.Client
	layout layout
	comp   compressor
	log    *slog.Logger
	ctx    context.Context // uploads; cancelled when Close gives up
	cancel context.CancelFunc

	pos      *pipeline.Positions
	requests s3client.RequestLimit // shared by the objects' writers

	mu       sync.Mutex
	cond     *sync.Cond // signalled when memory is freed or an object finishes
	parts    map[topicPartition]*partition
	held     int64 // bytes held for open and closing objects
	closing  int64 // of which by objects being stored
	err      error // the first failure to store an object
	closed   bool
	wg       sync.WaitGroup
	tickStop chan struct{}
	tickDone chan struct{}
}

type topicPartition struct {
	topic     string
	partition int32
}

// partition is what the sink knows of one partition it writes.
type partition struct {
	open *object // the object taking records, nil between objects
	last *object // the latest object handed over to be stored
	next int64   // the offset the next record should have; -1 before the first
	// resume: the next object opened looks in the bucket first (after
	// start, after a revocation, after a rewind).
	resume   bool
	known    []int64 // starts of stored objects after the open one, in knownDir
	knownDir string
}

// New checks the bucket and returns the sink.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Sink, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("no bucket given; use --s3-bucket NAME (or bucket: in the output section)")
	}
	if strings.HasPrefix(cfg.Bucket, "s3://") || strings.Contains(cfg.Bucket, "/") {
		return nil, fmt.Errorf("--s3-bucket %q: give the bucket's name alone, and a folder with --s3-prefix", cfg.Bucket)
	}
	if cfg.FlushRecords <= 0 || cfg.FlushBytes <= 0 || cfg.FlushInterval <= 0 {
		return nil, errors.New("flush-records, flush-bytes and flush-interval must be above zero")
	}
	if cfg.Memory*objectShare/4 < 2*chunkSize {
		return nil, fmt.Errorf("memory: at least %d KiB", (2*chunkSize*4/objectShare+1023)>>10)
	}
	if cfg.Uploads < 0 {
		return nil, fmt.Errorf("uploads %d: want at least 1 request in flight", cfg.Uploads)
	}
	if cfg.Uploads == 0 {
		cfg.Uploads = defaultUploads
	}
	if cfg.Format == "" {
		cfg.Format = "json"
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = 30 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Sink{cfg: cfg, bucket: cfg.Bucket, log: log, parts: map[topicPartition]*partition{}, requests: s3client.NewRequestLimit(cfg.Uploads)}
	s.cond = sync.NewCond(&s.mu)
	switch cfg.Compression {
	case "gzip", "":
		s.comp = newGzip()
	case "zstd":
		s.comp = newZstd()
	case "none":
		s.comp = noCompression{}
	default:
		return nil, fmt.Errorf("compression %q: want gzip, zstd or none", cfg.Compression)
	}
	s.layout = layout{byTime: cfg.PartitionBy == "time"}
	if p := strings.Trim(cfg.Prefix, "/"); p != "" {
		s.layout.prefix = p + "/"
	}
	switch cfg.Format {
	case "json":
		s.layout.ext = ".json" + s.comp.ext()
	case "parquet":
		s.layout.ext = ".parquet"
		if err := checkParquet(cfg); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("format %q: want json or parquet", cfg.Format)
	}
	var err error
	if s.client, err = s3client.New(ctx, cfg.Client); err != nil {
		return nil, err
	}
	checkCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.client.CheckBucket(checkCtx, cfg.Bucket); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.tickStop, s.tickDone = make(chan struct{}), make(chan struct{})
	go s.tick()
	return s, nil
}

// UsePositions links the sink to its source (see pipeline.PositionSink).
func (s *Sink) UsePositions(p *pipeline.Positions) {
	s.pos = p
	p.Revoked = s.revoked
	// The source's fetches stay in memory until the sink has encoded their
	// records, up to five at once (one being read, one buffered by the
	// client, two in the pipeline's queue, one being encoded): a twentieth
	// of the budget each keeps them within the quarter left to them.
	p.FetchMaxBytes = min(max(s.cfg.Memory/20, 1<<20), 50<<20)
}

// MemoryBudget is what the sink and the fetches feeding it hold at most
// (see pipeline.MemoryBoundedSink): --s3-memory.
func (s *Sink) MemoryBudget() int64 { return s.cfg.Memory }

// Write takes a batch into the partitions' open objects. It returns once
// the records are encoded, waiting while the memory budget is full; they
// are committed when their objects are stored.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	// The lock is taken per record, so that the objects' goroutines,
	// which take it to fetch work, run beside the encoding.
	for i := range b.Messages {
		s.mu.Lock()
		err := s.err
		if err == nil {
			err = s.add(&b.Messages[i])
		}
		if err == nil {
			err = s.waitForMemory(ctx)
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// add puts one record into its partition's open object, opening and
// closing objects as the layout and the flush settings say.
func (s *Sink) add(m *pipeline.Message) error {
	if m.Topic == "" {
		return errors.New("the s3 sink archives Kafka records by topic, partition and offset; read them with the kafka source (creek consume --to s3)")
	}
	tp := topicPartition{m.Topic, m.Partition}
	p := s.parts[tp]
	if p == nil {
		p = &partition{next: -1, resume: true}
		s.parts[tp] = p
	}
	if p.next >= 0 && m.Offset < p.next {
		// The source went back (an offset reset): what is open is dropped
		// and the bucket says where stored objects begin and end.
		s.log.Warn("s3 sink: partition read again from an earlier offset; the open object is dropped and rewritten", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "expected", p.next)
		if p.open != nil {
			s.abort(p.open)
			p.open = nil
		}
		p.resume, p.known = true, nil
	}
	if o := p.open; o != nil {
		switch {
		case o.forceEnd >= 0 && m.Offset > o.forceEnd:
			s.finish(p) // a gap (compaction, transaction markers) passed the stored object's end
		case s.layout.byTime && s.layout.dir(m.Topic, m.Partition, m.Timestamp) != o.dir:
			s.finish(p) // another hour: another folder
		}
	}
	if p.open == nil {
		if err := s.open(p, m); err != nil {
			return err
		}
	}
	o := p.open
	s.encode(o, m)
	p.next = m.Offset + 1
	if o.forceEnd >= 0 {
		if o.end >= o.forceEnd {
			s.finish(p)
		}
	} else if o.records >= s.cfg.FlushRecords || o.bytes >= s.cfg.FlushBytes {
		s.finish(p)
	}
	return nil
}

// open starts the partition's next object at record m. After a start,
// a revocation or a rewind it first looks in the bucket for objects
// stored from this offset on, and while it finds them, each new object
// ends where the stored one does.
func (s *Sink) open(p *partition, m *pipeline.Message) error {
	dir := s.layout.dir(m.Topic, m.Partition, m.Timestamp)
	o := s.newObject(m.Topic, m.Partition, dir, m.Offset, p.last)
	if p.knownDir != dir {
		p.known = nil
	}
	for len(p.known) > 0 && p.known[0] < m.Offset {
		p.known = p.known[1:]
	}
	rewrite := false
	switch {
	case len(p.known) > 0 && p.known[0] == m.Offset:
		p.known, rewrite = p.known[1:], true
	case p.resume:
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
		found, later, err := s.existing(ctx, dir, m.Topic, m.Partition, m.Offset)
		cancel()
		if err != nil {
			return fmt.Errorf("look for stored objects of %s/%d: %w", m.Topic, m.Partition, err)
		}
		rewrite, p.known, p.knownDir = found, later, dir
		// Later objects may follow in another folder (by time) only
		// if this one was stored.
		p.resume = found || len(later) > 0
	}
	if rewrite {
		s.log.Info("s3 sink: rewriting an object stored but not committed before", "key", o.key)
	}
	if len(p.known) > 0 {
		o.forceEnd = p.known[0] - 1
	}
	p.open = o
	s.wg.Add(1)
	go o.run()
	return nil
}

// finish closes the partition's open object: what it holds is written
// and the object stored, after the partition's previous object.
func (s *Sink) finish(p *partition) {
	o := p.open
	p.open, p.last = nil, o
	s.flushStaging(o)
	s.markClosed(o)
	o.enqueue(work{close: true})
}

// abort drops an open object: nothing of it is stored or committed.
func (s *Sink) abort(o *object) {
	s.markClosed(o)
	o.aborted = true
	s.release(o, cap(o.staging))
	o.staging = nil
	if o.rows != nil {
		s.release(o, o.rows.size())
		o.rows.take()
	}
	o.enqueue(work{abort: true})
}

// markClosed counts what an object holds as being freed.
func (s *Sink) markClosed(o *object) {
	if !o.closed {
		o.closed = true
		s.closing += o.held
	}
}

// waitForMemory blocks while the bytes held reach the budget, closing
// the largest open object when closing objects will not free enough.
func (s *Sink) waitForMemory(ctx context.Context) error {
	budget := s.cfg.Memory * objectShare / 4
	for s.held > budget && s.err == nil {
		if s.held-s.closing > budget/2 || s.closing == 0 {
			// Objects being stored will not free enough: close the
			// largest open one (not one rewriting a stored object,
			// which must end where that one does).
			var largest *partition
			for _, p := range s.parts {
				if o := p.open; o != nil && o.forceEnd < 0 && (largest == nil || o.held > largest.open.held) {
					largest = p
				}
			}
			if largest != nil {
				s.finish(largest)
				continue
			}
			if s.closing == 0 {
				return nil // nothing to free but rewrites: go over the budget for them
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.cond.Wait()
	}
	return s.err
}

// release gives back n bytes that an object held.
func (s *Sink) release(o *object, n int) {
	o.held -= int64(n)
	s.held -= int64(n)
	if o.closed {
		s.closing -= int64(n)
	}
	s.cond.Broadcast()
}

func (s *Sink) hold(o *object, n int) {
	o.held += int64(n)
	s.held += int64(n)
	if o.closed {
		s.closing += int64(n)
	}
}

// tick closes objects older than the flush interval, so a quiet topic's
// last records are stored without waiting for more.
func (s *Sink) tick() {
	defer close(s.tickDone)
	every := min(max(s.cfg.FlushInterval/10, 50*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.tickStop:
			return
		case now := <-t.C:
			s.mu.Lock()
			for _, p := range s.parts {
				if o := p.open; o != nil && o.forceEnd < 0 && now.Sub(o.opened) >= s.cfg.FlushInterval {
					s.finish(p)
				}
			}
			s.mu.Unlock()
		}
	}
}

// revoked drops the partitions' open objects (see pipeline.Positions) and
// waits until those being stored are done.
func (s *Sink) revoked(topic string, partitions []int32) {
	s.mu.Lock()
	var wait []*object
	for _, n := range partitions {
		tp := topicPartition{topic, n}
		p := s.parts[tp]
		if p == nil {
			continue
		}
		if p.open != nil {
			wait = append(wait, p.open)
			s.abort(p.open)
		}
		if p.last != nil {
			wait = append(wait, p.last)
		}
		delete(s.parts, tp)
	}
	s.mu.Unlock()
	for _, o := range wait {
		<-o.done
	}
}

// Close stores the open objects (within CloseTimeout; what is not stored
// by then is aborted) and waits for every object being stored.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.tickStop)
	<-s.tickDone
	s.mu.Lock()
	// In partition order, so that the log reads well.
	tps := make([]topicPartition, 0, len(s.parts))
	for tp, p := range s.parts {
		if p.open != nil {
			tps = append(tps, tp)
		}
	}
	sort.Slice(tps, func(i, j int) bool {
		return tps[i].topic < tps[j].topic || tps[i].topic == tps[j].topic && tps[i].partition < tps[j].partition
	})
	for _, tp := range tps {
		s.finish(s.parts[tp])
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.CloseTimeout):
		s.log.Warn("s3 sink: objects not stored within the close timeout are aborted; their records are read again next time", "timeout", s.cfg.CloseTimeout)
		s.cancel()
		<-done
	}
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(s.err, context.Canceled) {
		return nil
	}
	return s.err
}

// fail records the first error storing an object; Write returns it, and
// the pipeline stops without committing the object's offsets.
func (s *Sink) fail(err error) {
	if s.err == nil {
		s.err = err
	}
	s.cond.Broadcast()
}

// encode appends a record to an object's staging buffer (JSON) or rows
// (Parquet), handing full chunks to the object's writer.
func (s *Sink) encode(o *object, m *pipeline.Message) {
	o.records++
	o.end = m.Offset
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	o.bytes += int64(n)
	if o.rows != nil {
		before := o.rows.size()
		o.rows.add(m)
		s.hold(o, o.rows.size()-before)
		if o.rows.size() >= chunkSize {
			s.flushStaging(o)
		}
		return
	}
	// What a chunk takes is counted, not what it holds: a hundred
	// partitions' open chunks take memory before they fill.
	if o.staging == nil {
		o.staging = getChunk()
		s.hold(o, cap(o.staging))
	}
	before := cap(o.staging)
	o.staging = recordjson.Append(o.staging, m)
	s.hold(o, cap(o.staging)-before)
	if len(o.staging) >= chunkSize {
		s.flushStaging(o)
	}
}

// flushStaging hands what an object gathered to its writer.
func (s *Sink) flushStaging(o *object) {
	if o.rows != nil {
		if o.rows.len() > 0 {
			o.enqueue(work{rows: o.rows.take()})
		}
		return
	}
	if len(o.staging) > 0 {
		o.enqueue(work{data: o.staging})
		o.staging = nil
	}
}
