package s3client

import (
	"bytes"
	"context"
	"fmt"

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
type ObjectWriter struct {
	Client      *Client
	Bucket, Key string
	ContentType string
	PartSize    int // 0 for MinPartSize

	buf      []byte
	uploadID string
	parts    []types.CompletedPart
	written  int64
}

// Write buffers p, uploading parts as they fill.
func (w *ObjectWriter) Write(ctx context.Context, p []byte) error {
	partSize := max(w.PartSize, MinPartSize)
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, min(partSize, max(len(p), 64<<10)))
		}
		n := min(len(p), partSize-len(w.buf))
		w.buf = append(w.buf, p[:n]...)
		p = p[n:]
		w.written += int64(n)
		if len(w.buf) >= partSize {
			if err := w.uploadPart(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// Buffered is how many bytes the writer holds.
func (w *ObjectWriter) Buffered() int { return cap(w.buf) }

// Written is how many bytes were written so far.
func (w *ObjectWriter) Written() int64 { return w.written }

func (w *ObjectWriter) uploadPart(ctx context.Context) error {
	if w.uploadID == "" {
		out, err := w.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(w.Bucket), Key: aws.String(w.Key), ContentType: w.contentType()})
		if err != nil {
			return w.Client.Explain(err, w.Bucket)
		}
		w.uploadID = aws.ToString(out.UploadId)
	}
	n := int32(len(w.parts) + 1)
	out, err := w.Client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(w.Bucket), Key: aws.String(w.Key), UploadId: aws.String(w.uploadID),
		PartNumber: aws.Int32(n), Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf)))})
	if err != nil {
		return fmt.Errorf("upload part %d of %s: %w", n, w.Key, w.Client.Explain(err, w.Bucket))
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	w.buf = w.buf[:0]
	return nil
}

// Close stores the object: the last part and CompleteMultipartUpload, or
// one PutObject when it never filled a part.
func (w *ObjectWriter) Close(ctx context.Context) error {
	defer func() { w.buf = nil }()
	if w.uploadID == "" {
		_, err := w.Client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(w.Bucket), Key: aws.String(w.Key), ContentType: w.contentType(),
			Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf)))})
		if err != nil {
			return fmt.Errorf("store %s: %w", w.Key, w.Client.Explain(err, w.Bucket))
		}
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.uploadPart(ctx); err != nil {
			return err
		}
	}
	_, err := w.Client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(w.Bucket), Key: aws.String(w.Key), UploadId: aws.String(w.uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts}})
	if err != nil {
		return fmt.Errorf("complete %s: %w", w.Key, w.Client.Explain(err, w.Bucket))
	}
	return nil
}

// Abort drops the object: its multipart upload, if one was started, is
// aborted, so the parts already sent are deleted.
func (w *ObjectWriter) Abort(ctx context.Context) error {
	w.buf = nil
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
