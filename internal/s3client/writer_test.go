package s3client

import (
	"bytes"
	"io"
	"testing"
)

// A part held as slices reads as their concatenation, and reads again
// from wherever the SDK seeks to (it rewinds to sign and to retry).
func TestChunkReaderReadsAndSeeks(t *testing.T) {
	w := &ObjectWriter{}
	w.chunks = [][]byte{[]byte("hello, "), {}, []byte("multipart "), []byte("world")}
	w.size = 22
	r := w.body()
	want := "hello, multipart world"
	for _, seek := range []int64{0, 3, 7, 21, 22} {
		if _, err := r.Seek(seek, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		buf := make([]byte, 4) // small reads cross chunk edges
		for {
			n, err := r.Read(buf)
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
		}
		if got.String() != want[seek:] {
			t.Fatalf("from %d: %q, want %q", seek, got.String(), want[seek:])
		}
	}
	if end, _ := r.Seek(-5, io.SeekEnd); end != 17 {
		t.Fatalf("seek from the end: %d", end)
	}
}
