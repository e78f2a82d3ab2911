package elasticsearch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/processor"
)

// documents turns messages into bulk index actions. A message that cannot
// be a document is rejected alone.
func (s *Sink) documents(msgs []pipeline.Message) ([]doc, []pipeline.Rejection, error) {
	docs := make([]doc, 0, len(msgs))
	var rejected []pipeline.Rejection
	for i := range msgs {
		m := &msgs[i]
		id, source, err := s.source(m)
		if err != nil {
			rejected = append(rejected, pipeline.Rejection{Index: i, Class: "creek.sink.elasticsearch.BadDocument", Err: err})
			continue
		}
		at := m.Timestamp
		if at.IsZero() {
			at = time.Now()
		}
		index := s.index.at(at)
		line := make([]byte, 0, len(source)+len(index)+len(id)+40)
		line = append(line, `{"index":{"_index":`...)
		line = gjson.AppendJSONString(line, index)
		line = append(line, `,"_id":`...)
		line = gjson.AppendJSONString(line, id)
		line = append(line, "}}\n"...)
		line = append(line, source...)
		line = append(line, '\n')
		docs = append(docs, doc{msg: i, index: index, line: line})
	}
	return docs, rejected, nil
}

// source is a message's document id and body: the mapped tweet as it is,
// keyed by its id, or the record as topic, partition, offset, timestamp,
// key, value (JSON as it is, anything else a string) and headers.
func (s *Sink) source(m *pipeline.Message) (id string, source []byte, err error) {
	if s.cfg.Shape == pipeline.ShapeTweet {
		t, err := processor.DecodeTweet(m.Value)
		if err != nil {
			return "", nil, err
		}
		return t.ID, bytes.TrimSpace(m.Value), nil
	}
	if m.Topic == "" {
		return "", nil, fmt.Errorf("the record has no Kafka topic, partition and offset to make its document id: read it from Kafka, or use --map tweet")
	}
	id = m.Topic + "+" + strconv.Itoa(int(m.Partition)) + "+" + strconv.FormatInt(m.Offset, 10)
	b := []byte(`{"topic":`)
	b = gjson.AppendJSONString(b, m.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(m.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, m.Offset, 10)
	if !m.Timestamp.IsZero() {
		b = append(b, `,"timestamp":"`...)
		b = m.Timestamp.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, '"')
	}
	if m.Key != nil {
		b = append(b, `,"key":`...)
		b = gjson.AppendJSONString(b, strings.ToValidUTF8(string(m.Key), "\uFFFD"))
	}
	b = append(b, `,"value":`...)
	if gjson.ValidBytes(m.Value) && utf8.Valid(m.Value) {
		var c bytes.Buffer
		json.Compact(&c, m.Value) // one line: bulk bodies are newline-delimited
		b = append(b, c.Bytes()...)
	} else {
		b = gjson.AppendJSONString(b, strings.ToValidUTF8(string(m.Value), "\uFFFD"))
	}
	if len(m.Headers) > 0 {
		b = append(b, `,"headers":{`...)
		for i, h := range m.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			b = gjson.AppendJSONString(b, h.Key)
			b = append(b, ':')
			b = gjson.AppendJSONString(b, strings.ToValidUTF8(string(h.Value), "\uFFFD"))
		}
		b = append(b, '}')
	}
	return id, append(b, '}'), nil
}

// indexName is an index name with %Y, %m, %d, %H filled from the record's
// time (UTC).
type indexName struct {
	pattern string
	dated   bool
}

func parseIndexName(s string) indexName {
	return indexName{pattern: s, dated: strings.Contains(s, "%")}
}

func (n indexName) at(t time.Time) string {
	if !n.dated {
		return n.pattern
	}
	t = t.UTC()
	return strings.NewReplacer("%Y", fmt.Sprintf("%04d", t.Year()), "%m", fmt.Sprintf("%02d", t.Month()),
		"%d", fmt.Sprintf("%02d", t.Day()), "%H", fmt.Sprintf("%02d", t.Hour()), "%%", "%").Replace(n.pattern)
}

// The index mappings of create-index. raw and value are kept in _source
// but not indexed: a tweet's nested fields would grow the mapping without
// end, and a record's value can be an object in one record and a string in
// the next.
const (
	tweetMapping = `{"mappings":{"properties":{` +
		`"id":{"type":"keyword"},"created_at":{"type":"date"},"lang":{"type":"keyword"},` +
		`"author_id":{"type":"keyword"},"username":{"type":"keyword"},"text":{"type":"text"},` +
		`"hashtags":{"type":"keyword"},"raw":{"type":"object","enabled":false}}}}`
	recordMapping = `{"mappings":{"properties":{` +
		`"topic":{"type":"keyword"},"partition":{"type":"integer"},"offset":{"type":"long"},` +
		`"timestamp":{"type":"date"},"key":{"type":"keyword"},"value":{"type":"object","enabled":false},` +
		`"headers":{"type":"object"}}}}`
)

// parseSize reads sizes such as 5MB, 512KiB or 1048576.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 5MB", s)
	}
	return int64(n * float64(mult)), nil
}
