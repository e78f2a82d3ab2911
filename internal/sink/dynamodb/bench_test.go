package dynamodb

import (
	"context"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/storetest"
)

// Items/s into dynalite: batches of 10,000 mapped tweets in BatchWriteItem
// requests of 25, eight in flight (the default). Run with
//
//	go test -run '^$' -bench . -benchtime 5x ./internal/sink/dynamodb/
func BenchmarkWriteTweets(b *testing.B) {
	_, aws := endpoint(b)
	s := open(b, Config{Table: freshTable(), CreateTable: true, Shape: pipeline.ShapeTweet, AWS: aws})
	_, mapped := storetest.Tweets(b, 9, 10000*b.N, tweetStart, time.Millisecond)
	b.ResetTimer()
	for i := range b.N {
		if err := s.Write(context.Background(), &pipeline.Batch{Messages: mapped[i*10000 : (i+1)*10000]}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10000)/b.Elapsed().Seconds(), "items/s")
}
