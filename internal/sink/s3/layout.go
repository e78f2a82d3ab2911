package s3

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// layout names objects as Kafka Connect's S3 sink does:
//
//	PREFIX/TOPIC/partition=N/TOPIC+N+START.EXT                 (offset)
//	PREFIX/TOPIC/dt=YYYY-MM-DD/hour=HH/TOPIC+N+START.EXT       (time, by record timestamp in UTC)
//
// with START, the object's first offset, zero-padded to 20 digits so that
// names sort by offset.
type layout struct {
	prefix string // "" or ending in "/"
	byTime bool
	ext    string // ".json.gz", ".parquet", ...
}

// dir is the folder of a partition's object that starts with a record
// of time ts.
func (l *layout) dir(topic string, partition int32, ts time.Time) string {
	if l.byTime {
		ts = ts.UTC()
		return l.prefix + topic + "/dt=" + ts.Format("2006-01-02") + "/hour=" + ts.Format("15") + "/"
	}
	return l.prefix + topic + "/partition=" + strconv.Itoa(int(partition)) + "/"
}

// namePrefix is what every object name of the partition in dir starts with.
func (l *layout) namePrefix(dir, topic string, partition int32) string {
	return dir + topic + "+" + strconv.Itoa(int(partition)) + "+"
}

func (l *layout) key(dir, topic string, partition int32, start int64) string {
	return l.namePrefix(dir, topic, partition) + fmt.Sprintf("%020d", start) + l.ext
}

// startOf reads the start offset from an object name of the partition.
func (l *layout) startOf(namePrefix, key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, namePrefix)
	if !ok || !strings.HasSuffix(rest, l.ext) || len(rest) != 20+len(l.ext) {
		return 0, false
	}
	n, err := strconv.ParseInt(rest[:20], 10, 64)
	return n, err == nil
}

// existing looks in the bucket for what an earlier run of this partition
// stored in dir from offset start on: whether an object starting at start
// exists, and the starts of the partition's later objects there. A run
// that stopped after storing objects but before their offsets were
// committed is read again from the last commit; following the stored
// objects' boundaries makes it write the same names with the same
// offsets, so the second write overwrites the first instead of two
// objects holding the same offsets. It also aborts multipart uploads that
// a crashed run left for these names.
func (s *Sink) existing(ctx context.Context, dir, topic string, partition int32, start int64) (bool, []int64, error) {
	np := s.layout.namePrefix(dir, topic, partition)
	from := np + fmt.Sprintf("%020d", start)
	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(np), StartAfter: aws.String(from), MaxKeys: aws.Int32(1000)})
	if err != nil {
		return false, nil, s.client.Explain(err, s.bucket)
	}
	found := false
	var later []int64
	for _, o := range out.Contents {
		n, ok := s.layout.startOf(np, aws.ToString(o.Key))
		switch {
		case !ok || n < start:
		case n == start:
			found = true
		default:
			later = append(later, n)
		}
	}
	ups, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(np)})
	if err != nil {
		return false, nil, s.client.Explain(err, s.bucket)
	}
	for _, u := range ups.Uploads {
		if n, ok := s.layout.startOf(np, aws.ToString(u.Key)); ok && n >= start {
			s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.bucket), Key: u.Key, UploadId: u.UploadId})
		}
	}
	return found, later, nil
}
