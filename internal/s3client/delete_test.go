package s3client_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/creek-pipeline/creek/internal/s3test"
)

// DeletePrefix removes every object under the prefix, over more than one
// page of the listing (1,000 keys), and nothing beside it.
func TestDeletePrefix(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "del")
	cl := srv.Client(t)
	put := func(key string) {
		if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("del"), Key: aws.String(key), Body: bytes.NewReader([]byte("x"))}); err != nil {
			t.Error(err)
		}
	}
	const n = 1002
	var wg sync.WaitGroup
	keys := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				put(k)
			}
		}()
	}
	for i := range n {
		keys <- fmt.Sprintf("run/1/obj-%04d", i)
	}
	keys <- "run/10/kept"
	keys <- "kept"
	close(keys)
	wg.Wait()
	deleted, err := cl.DeletePrefix(context.Background(), "del", "run/1/")
	if err != nil {
		t.Fatal(err)
	}
	if deleted != n {
		t.Fatalf("deleted %d objects, want %d", deleted, n)
	}
	if left := srv.Keys(t, "del", ""); len(left) != 2 {
		t.Fatalf("left %v, want run/10/kept and kept", left)
	}
}
