package processor

import (
	"testing"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// Cost per record of processors over generated tweets (about 600 bytes of
// X API v2 JSON each). Run with
//
//	go test -run '^$' -bench . -benchmem ./internal/processor/
//
// records/s is per core.
func benchProcessor(b *testing.B, p pipeline.Processor) {
	msgs := tweets(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m := msgs[i%len(msgs)]
		if _, err := p.Process(&m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkFilterTopic(b *testing.B) { benchProcessor(b, mustFilterB(b, `topic == "tweets"`)) }
func BenchmarkFilterLang(b *testing.B)  { benchProcessor(b, mustFilterB(b, `value.data.lang == "ko"`)) }
func BenchmarkFilterHashtag(b *testing.B) {
	benchProcessor(b, mustFilterB(b, `value.data.text contains "#kafka" or headers.rule == "data"`))
}
func BenchmarkMapExpr(b *testing.B) {
	m, err := NewMap(`{"id": value.data.id, "lang": value.data.lang, "user": value.includes.users[0].username}`)
	if err != nil {
		b.Fatal(err)
	}
	benchProcessor(b, m)
}
func BenchmarkMapTweet(b *testing.B) { benchProcessor(b, TweetMap{}) }

func mustFilterB(b *testing.B, src string) *Filter {
	f, err := NewFilter(src)
	if err != nil {
		b.Fatal(err)
	}
	return f
}
