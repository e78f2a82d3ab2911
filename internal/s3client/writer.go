package s3client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MinPartSize is S3's smallest part of a multipart upload (but the last).
const MinPartSize = 5 << 20

// ObjectWriter streams one object to S3. Up to PartSize bytes are held; a
// full part goes up as a part of a multipart upload (created with the first
// part), and Close uploads the rest and completes the upload, or, for an
// object smaller than one part, stores it with a single PutObject. Nothing is
// visible in the bucket before Close returns nil; Abort (or a failed Close)
// leaves nothing behind but what a crash leaves: an unfinished upload that
// is invisible and that a bucket lifecycle rule or a later Abort removes.
//
// A part is held as the slices it was written in, not copied into one
// buffer: WriteOwned takes a slice as it is.
type ObjectWriter struct {
	Client      *Client
	Bucket, Key string
	ContentType string
	PartSize    int // 0 for MinPartSize
	// Release, when set, gets back the slices given to WriteOwned once
	// they are uploaded or dropped, for reuse.
	Release func([]byte)
	// Requests, when set, is shared by writers to bound the requests they
	// have in flight at once (see RequestLimit).
	Requests RequestLimit

	chunks   [][]byte
	owned    []bool // chunks given to WriteOwned
	size     int    // bytes in chunks
	held     int    // their capacity
	uploadID string
	parts    []types.CompletedPart
	written  int64
}

// RequestLimit bounds how many requests that store data (CreateMultipartUpload,
// UploadPart, PutObject, CompleteMultipartUpload) writers sharing it send at
// once: a slot is taken for each request and given back when it is answered.
// Its capacity is the bound; nil is no bound.
type RequestLimit chan struct{}

// NewRequestLimit allows n requests at once; n <= 0 is no bound.
func NewRequestLimit(n int) RequestLimit {
	if n <= 0 {
		return nil
	}
	return make(RequestLimit, n)
}

// do runs one request in a slot, waiting for one unless ctx ends first.
func (l RequestLimit) do(ctx context.Context, request func() error) error {
	if l != nil {
		select {
		case l <- struct{}{}:
			defer func() { <-l }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return request()
}

// Write copies p into the part being gathered, uploading it when full.
func (w *ObjectWriter) Write(ctx context.Context, p []byte) error {
	w.written += int64(len(p))
	for len(p) > 0 {
		last := len(w.chunks) - 1
		if last < 0 || len(w.chunks[last]) == cap(w.chunks[last]) {
			c := make([]byte, 0, min(1<<20, max(len(p), 64<<10)))
			w.chunks = append(w.chunks, c)
			w.owned = append(w.owned, false)
			w.held += cap(c)
			last++
		}
		c := w.chunks[last]
		n := min(len(p), cap(c)-len(c))
		w.chunks[last] = append(c, p[:n]...)
		w.size += n
		p = p[n:]
	}
	return w.maybeUpload(ctx)
}

// WriteOwned adds p to the part being gathered without copying it; the
// writer owns p from then on.
func (w *ObjectWriter) WriteOwned(ctx context.Context, p []byte) error {
	w.written += int64(len(p))
	w.chunks = append(w.chunks, p)
	w.owned = append(w.owned, true)
	w.size += len(p)
	w.held += cap(p)
	return w.maybeUpload(ctx)
}

func (w *ObjectWriter) maybeUpload(ctx context.Context) error {
	if w.size >= max(w.PartSize, MinPartSize) {
		return w.uploadPart(ctx)
	}
	return nil
}

// Buffered is how many bytes of memory the writer holds.
func (w *ObjectWriter) Buffered() int { return w.held }

// Written is how many bytes were written so far.
func (w *ObjectWriter) Written() int64 { return w.written }

func (w *ObjectWriter) body() *chunkReader {
	return &chunkReader{chunks: w.chunks, size: int64(w.size)}
}

func (w *ObjectWriter) drop() {
	if w.Release != nil {
		for i, c := range w.chunks {
			if w.owned[i] {
				w.Release(c[:0])
			}
		}
	}
	w.chunks, w.owned, w.size, w.held = nil, nil, 0, 0
}

func (w *ObjectWriter) uploadPart(ctx context.Context) error {
	if w.uploadID == "" {
		var out *s3.CreateMultipartUploadOutput
		err := w.Requests.do(ctx, func() (err error) {
			out, err = w.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
				Bucket: aws.String(w.Bucket), Key: aws.String(w.Key), ContentType: w.contentType()})
			return err
		})
		if err != nil {
			return w.Client.Explain(err, w.Bucket)
		}
		w.uploadID = aws.ToString(out.UploadId)
	}
	n := int32(len(w.parts) + 1)
	var out *s3.UploadPartOutput
	err := w.Requests.do(ctx, func() (err error) {
		out, err = w.Client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(w.Bucket), Key: aws.String(w.Key), UploadId: aws.String(w.uploadID),
			PartNumber: aws.Int32(n), Body: w.body(), ContentLength: aws.Int64(int64(w.size))})
		return err
	})
	if err != nil {
		return fmt.Errorf("upload part %d of %s: %w", n, w.Key, w.Client.Explain(err, w.Bucket))
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	w.drop()
	return nil
}

// Close stores the object: the last part and CompleteMultipartUpload, or
// one PutObject when it never filled a part.
func (w *ObjectWriter) Close(ctx context.Context) error {
	defer w.drop()
	if w.uploadID == "" {
		err := w.Requests.do(ctx, func() error {
			_, err := w.Client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(w.Bucket), Key: aws.String(w.Key), ContentType: w.contentType(),
				Body: w.body(), ContentLength: aws.Int64(int64(w.size))})
			return err
		})
		if err != nil {
			return fmt.Errorf("store %s: %w", w.Key, w.Client.Explain(err, w.Bucket))
		}
		return nil
	}
	if w.size > 0 {
		if err := w.uploadPart(ctx); err != nil {
			return err
		}
	}
	err := w.Requests.do(ctx, func() error {
		_, err := w.Client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: aws.String(w.Bucket), Key: aws.String(w.Key), UploadId: aws.String(w.uploadID),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts}})
		return err
	})
	if err != nil {
		return fmt.Errorf("complete %s: %w", w.Key, w.Client.Explain(err, w.Bucket))
	}
	return nil
}

// Abort drops the object: its multipart upload, if one was started, is
// aborted, so the parts already sent are deleted.
func (w *ObjectWriter) Abort(ctx context.Context) error {
	w.drop()
	if w.uploadID == "" {
		return nil
	}
	_, err := w.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(w.Bucket), Key: aws.String(w.Key), UploadId: aws.String(w.uploadID)})
	w.uploadID = ""
	return err
}

func (w *ObjectWriter) contentType() *string {
	if w.ContentType == "" {
		return nil
	}
	return aws.String(w.ContentType)
}

// chunkReader reads a part held as slices; it seeks, so that the SDK can
// sign the body and send it again on a retry.
type chunkReader struct {
	chunks [][]byte
	size   int64
	pos    int64
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n := 0
	off := r.pos
	for _, c := range r.chunks {
		if off >= int64(len(c)) {
			off -= int64(len(c))
			continue
		}
		m := copy(p[n:], c[off:])
		n += m
		off = 0
		if n == len(p) {
			break
		}
	}
	r.pos += int64(n)
	return n, nil
}

func (r *chunkReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start")
	}
	r.pos = offset
	return offset, nil
}
