package elasticsearch

import (
	"context"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/storetest"
)

// Documents/s into OpenSearch: batches of 10,000 mapped tweets, cut into
// bulk requests of 1,000 with four in flight (the defaults), into the test
// server (one shard, 512 MB of heap). Run with
//
//	go test -run '^$' -bench . -benchtime 10x ./internal/sink/elasticsearch/
func BenchmarkWriteTweets(b *testing.B) {
	_, url := storetest.OpenSearch(b)
	index := freshIndex()
	s := open(b, Config{URLs: []string{url}, Index: index, CreateIndex: true, Shape: pipeline.ShapeTweet})
	_, mapped := storetest.Tweets(b, 5, 10000*b.N, time.Now(), time.Second)
	b.ResetTimer()
	for i := range b.N {
		if err := s.Write(context.Background(), &pipeline.Batch{Messages: mapped[i*10000 : (i+1)*10000]}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*10000)/b.Elapsed().Seconds(), "docs/s")
	if n := count(b, url, index); n != b.N*10000 {
		b.Fatalf("%d documents, want %d", n, b.N*10000)
	}
}
