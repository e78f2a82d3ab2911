// Package parts writes the parts of a batch at once: the bulk requests of
// the Elasticsearch sink, the BatchWriteItem requests of the DynamoDB sink.
// The batch is done when every part is, its rejections are those of all
// parts, and the first part that fails for good cancels the others.
package parts

import (
	"context"
	"sync"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// Write calls write for the parts 0 to n-1, at most workers at a time. It
// returns the first error, or the rejections found before (rejected) and
// by the parts as one *pipeline.RejectedError, or nil.
func Write(ctx context.Context, n, workers int, rejected []pipeline.Rejection, write func(ctx context.Context, part int) ([]pipeline.Rejection, error)) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		slots = make(chan struct{}, max(workers, 1))
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range n {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			rej, err := write(ctx, i)
			mu.Lock()
			defer mu.Unlock()
			rejected = append(rejected, rej...)
			if err != nil && first == nil {
				first = err
				cancel()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if len(rejected) > 0 {
		return &pipeline.RejectedError{Rejections: rejected}
	}
	return nil
}
