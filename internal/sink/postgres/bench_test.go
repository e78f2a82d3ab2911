package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/source/generate"
	"github.com/creek-pipeline/creek/internal/storetest"
)

// Tweets/s into PostgreSQL: batches of 10,000 mapped tweets (the Kafka
// source's largest batch), new ones each time, three in flight (one
// per connection, --pg-connections' default), into the test server (fsync and synchronous commit
// on). Generating and mapping the tweets is done before the clock starts.
// Run with
//
//	go test -run '^$' -bench . -benchtime 10x ./internal/sink/postgres/
func BenchmarkWriteTweets(b *testing.B) {
	pg := storetest.PostgreSQL(b)
	s, err := Open(context.Background(), Config{URL: pg.URL, Table: freshTable(), CreateTable: true, Shape: pipeline.ShapeTweet, Connections: 3}, quiet())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := generate.New(3)
	batch := func() *pipeline.Batch {
		msgs := make([]pipeline.Message, 10000)
		for i := range msgs {
			msgs[i] = g.Next(time.Now())
			(processor.TweetMap{}).Process(&msgs[i])
		}
		return &pipeline.Batch{Messages: msgs}
	}
	batches := make([]*pipeline.Batch, b.N)
	for i := range batches {
		batches[i] = batch()
	}
	done := make(chan error, 3)
	b.ResetTimer()
	for i, next := range batches {
		if i >= 3 {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		s.WriteAsync(context.Background(), next, func(err error) { done <- err })
	}
	for range min(b.N, 3) {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10000)/b.Elapsed().Seconds(), "tweets/s")
}
