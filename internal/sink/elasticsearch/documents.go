package elasticsearch

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/recordjson"
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
// keyed by its id, or the record in creek's one JSON form (recordjson:
// topic, partition, offset, timestamp, key, value, headers).
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
	line := recordjson.Append(nil, m)
	return id, line[:len(line)-1], nil // without the newline
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
