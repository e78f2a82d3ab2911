package postgres

import (
	"context"
	"testing"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/storetest"
)

// Tweets/s into PostgreSQL: batches of 10,000 mapped tweets (the Kafka
// source's largest batch), each one transaction, into the test server
// (its default durability: fsync and synchronous commit on). Run with
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/sink/postgres/
func BenchmarkWriteTweets(b *testing.B) {
	pg := storetest.PostgreSQL(b)
	s, err := Open(context.Background(), Config{URL: pg.URL, Table: freshTable(), CreateTable: true, Shape: pipeline.ShapeTweet}, quiet())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 10000
	_, mapped := mappedTweets(b, batch*4)
	b.ResetTimer()
	for i := range b.N {
		// New ids each time after the first round: inserts, not updates.
		msgs := mapped[(i%4)*batch : (i%4+1)*batch]
		if err := s.Write(context.Background(), &pipeline.Batch{Messages: msgs}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "tweets/s")
}
