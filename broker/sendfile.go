package broker

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/storage"
)

// Zero-copy fetches. kmsg encodes a fetch response whole, record sets
// included. To send record sets straight from segment files with
// sendfile(2), the fetch puts a placeholder of the right length in each
// large record set: a random marker followed by zeros. The writer encodes
// the response with kmsg, finds the placeholders in order (each starts with
// the marker, which nothing else in a response contains), and writes the
// bytes around them from memory and the record sets from the files.

// sendfileMin is the smallest record set sent with sendfile; smaller ones
// are cheaper to copy.
const sendfileMin = 64 << 10

// fetchResponse is a FetchResponse whose large record sets are placeholders
// for file regions.
type fetchResponse struct {
	*kmsg.FetchResponse
	regions []region // in encoding order
}

// region is a record set to send from a segment file.
type region struct {
	chunk storage.Chunk
	dst   *[]byte // the partition's RecordBatches, for the copying fallback
}

var placeholderMarker = func() []byte {
	m := make([]byte, 32)
	rand.Read(m)
	return m
}()

var placeholders struct {
	sync.Mutex
	buf []byte // marker, then zeros; grows to the largest region asked for
}

// placeholderOf returns n bytes that start with the marker. The slice is
// shared and never written to: kmsg only copies from it.
func placeholderOf(n int64) []byte {
	placeholders.Lock()
	defer placeholders.Unlock()
	if int64(len(placeholders.buf)) < n {
		buf := make([]byte, max(n, 2*int64(len(placeholders.buf))))
		copy(buf, placeholderMarker)
		placeholders.buf = buf
	}
	return placeholders.buf[:n:n]
}

// writeWithRegions writes an encoded fetch response, sending each region
// from its file. If a placeholder cannot be found (which would be a bug),
// the record sets are read into memory and the response encoded again.
func (c *conn) writeWithRegions(buf []byte, fr *fetchResponse, p *pending) error {
	starts := make([]int, 0, len(fr.regions))
	pos := 0
	for _, r := range fr.regions {
		i := bytes.Index(buf[pos:], placeholderMarker)
		if i < 0 || pos+i+int(r.chunk.Len) > len(buf) {
			c.b.logger.Error("fetch placeholder not found; copying record sets instead")
			return c.writeCopied(fr, p)
		}
		starts = append(starts, pos+i)
		pos += i + int(r.chunk.Len)
	}
	pos = 0
	for i, r := range fr.regions {
		if _, err := c.w.Write(buf[pos:starts[i]]); err != nil {
			return err
		}
		if err := c.w.Flush(); err != nil {
			return err
		}
		if err := sendFile(c.nc, r.chunk); err != nil {
			// Part of the response is out: the stream cannot be repaired.
			return fmt.Errorf("send record set from %s: %w", r.chunk.File.Name(), err)
		}
		pos = starts[i] + int(r.chunk.Len)
	}
	_, err := c.w.Write(buf[pos:])
	return err
}

func (c *conn) writeCopied(fr *fetchResponse, p *pending) error {
	for _, r := range fr.regions {
		data, err := r.chunk.Bytes()
		if err != nil {
			data = []byte{}
		}
		*r.dst = data
	}
	fr.regions = nil
	_, err := c.w.Write(c.encode(p))
	return err
}
