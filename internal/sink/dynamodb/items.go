package dynamodb

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/recordjson"
)

// item is one message's attributes; msg is its place in the batch.
type item struct {
	msg   int
	id    string
	attrs map[string]types.AttributeValue
}

// MaxItemSize is DynamoDB's limit on an item, names and values together.
const MaxItemSize = 400 * 1024

// TimeLayout is how times are written: RFC 3339 in UTC with milliseconds,
// so that they sort as text.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// items turns messages into items, the last message of each id winning
// (DynamoDB refuses a request that names a key twice). Messages that
// cannot be items, or are too large, are rejected alone.
func (s *Sink) items(msgs []pipeline.Message) ([]item, []pipeline.Rejection) {
	out := make([]item, 0, len(msgs))
	at := make(map[string]int, len(msgs))
	var rejected []pipeline.Rejection
	for i := range msgs {
		attrs, id, err := s.attributes(&msgs[i])
		if err == nil {
			if size := itemSize(attrs); size > MaxItemSize {
				err = fmt.Errorf("item %s is %d bytes, over DynamoDB's limit of 400 KB", id, size)
			}
		}
		if err != nil {
			rejected = append(rejected, pipeline.Rejection{Index: i, Class: "creek.sink.dynamodb.BadItem", Err: err})
			continue
		}
		it := item{msg: i, id: id, attrs: attrs}
		if j, ok := at[id]; ok {
			out[j] = it
			continue
		}
		at[id] = len(out)
		out = append(out, it)
	}
	return out, rejected
}

// attributes is a message as an item: the flat tweet after --map tweet,
// else the record. Empty strings are left out.
func (s *Sink) attributes(m *pipeline.Message) (map[string]types.AttributeValue, string, error) {
	a := map[string]types.AttributeValue{}
	str := func(name, v string) {
		if v != "" {
			a[name] = &types.AttributeValueMemberS{Value: v}
		}
	}
	var id string
	if s.cfg.Shape == pipeline.ShapeTweet {
		t, err := processor.DecodeTweet(m.Value)
		if err != nil {
			return nil, "", err
		}
		id = t.ID
		if !t.CreatedAt.IsZero() {
			str("created_at", t.CreatedAt.UTC().Format(TimeLayout))
		}
		str("lang", t.Lang)
		str("author_id", t.AuthorID)
		str("username", t.Username)
		str("text", t.Text)
		tags := make([]types.AttributeValue, len(t.Hashtags))
		for i, h := range t.Hashtags {
			tags[i] = &types.AttributeValueMemberS{Value: h}
		}
		a["hashtags"] = &types.AttributeValueMemberL{Value: tags}
		str("raw", string(t.Raw))
	} else {
		if m.Topic == "" {
			return nil, "", fmt.Errorf("the record has no Kafka topic, partition and offset to make its id: read it from Kafka, or use --map tweet")
		}
		id = m.Topic + "-" + strconv.Itoa(int(m.Partition)) + "-" + strconv.FormatInt(m.Offset, 10)
		str("topic", m.Topic)
		a["partition"] = &types.AttributeValueMemberN{Value: strconv.Itoa(int(m.Partition))}
		a["offset"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(m.Offset, 10)}
		if len(m.Key) > 0 {
			a["key"] = &types.AttributeValueMemberB{Value: m.Key}
		}
		switch {
		case utf8.Valid(m.Value):
			str("value", string(m.Value))
		default:
			a["value"] = &types.AttributeValueMemberB{Value: m.Value}
		}
		if len(m.Headers) > 0 {
			h := make(map[string]types.AttributeValue, len(m.Headers))
			for _, kv := range m.Headers {
				h[kv.Key] = &types.AttributeValueMemberS{Value: recordjson.Printable(kv.Value)}
			}
			a["headers"] = &types.AttributeValueMemberM{Value: h}
		}
		if !m.Timestamp.IsZero() {
			str("timestamp", m.Timestamp.UTC().Format(TimeLayout))
		}
	}
	a["id"] = &types.AttributeValueMemberS{Value: id}
	if s.cfg.TTL > 0 {
		from := m.Timestamp
		if from.IsZero() {
			from = time.Now()
		}
		a["expires_at"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(from.Add(s.cfg.TTL).Unix(), 10)}
	}
	return a, id, nil
}

// itemSize is an item's size as DynamoDB counts it: each attribute's name
// and value; a number about one byte per two digits; a list or map 3 bytes
// and one per element besides its elements.
func itemSize(attrs map[string]types.AttributeValue) int {
	n := 0
	for name, v := range attrs {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return len(v.Value)/2 + 2
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}
