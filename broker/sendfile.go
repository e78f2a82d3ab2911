package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/storage"
)

// Zero-copy fetches. kmsg encodes a fetch response whole, record sets
// included. To send record sets straight from segment files with
// sendfile(2), the fetch puts a placeholder in each large record set: a
// random 32-byte marker that nothing else in a response contains. The writer
// encodes the response with kmsg (so it stays small however much data it
// carries), finds the placeholders in order, and writes the bytes around
// them from memory and the record sets from the files. The only bytes it
// changes are the ones that depend on a record set's length: the length
// prefix in front of each placeholder and the frame size.

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

// placeholder stands in for a region's record set; shared and never
// written to, as kmsg only copies from it.
var placeholder = func() []byte {
	m := make([]byte, 32)
	rand.Read(m)
	return m
}()

// regionSpan is where a placeholder and its length prefix lie in an encoded
// response, and the prefix the region's real length needs.
type regionSpan struct {
	prefixAt, dataAt int
	prefix           []byte
}

// locateRegions finds each region's placeholder in buf and checks that the
// length prefix in front of it is the placeholder's: an int32 in
// non-flexible versions, an unsigned varint of length+1 in flexible ones.
func locateRegions(buf []byte, fr *fetchResponse) ([]regionSpan, bool) {
	spans := make([]regionSpan, 0, len(fr.regions))
	flexible := fr.IsFlexible()
	pos := 0
	for _, r := range fr.regions {
		i := bytes.Index(buf[pos:], placeholder)
		if i < 0 {
			return nil, false
		}
		at := pos + i
		var sp regionSpan
		if flexible {
			if at < 1 || buf[at-1] != byte(len(placeholder)+1) {
				return nil, false
			}
			sp = regionSpan{prefixAt: at - 1, dataAt: at, prefix: binary.AppendUvarint(nil, uint64(r.chunk.Len)+1)}
		} else {
			if at < 4 || binary.BigEndian.Uint32(buf[at-4:]) != uint32(len(placeholder)) {
				return nil, false
			}
			sp = regionSpan{prefixAt: at - 4, dataAt: at, prefix: binary.BigEndian.AppendUint32(nil, uint32(r.chunk.Len))}
		}
		spans = append(spans, sp)
		pos = at + len(placeholder)
	}
	return spans, true
}

// writeWithRegions writes an encoded fetch response, sending each region
// from its file. If a placeholder cannot be found (which would be a bug),
// the record sets are read into memory and the response encoded again.
func (c *conn) writeWithRegions(buf []byte, fr *fetchResponse, p *pending) error {
	spans, ok := locateRegions(buf, fr)
	if !ok {
		c.b.logger.Error("fetch placeholder not found; copying record sets instead")
		return c.writeCopied(fr, p)
	}
	size := int64(len(buf) - 4)
	for i, r := range fr.regions {
		size += r.chunk.Len - int64(len(placeholder)) + int64(len(spans[i].prefix)-(spans[i].dataAt-spans[i].prefixAt))
	}
	binary.BigEndian.PutUint32(buf, uint32(size))
	pos := 0
	for i, r := range fr.regions {
		if _, err := c.w.Write(buf[pos:spans[i].prefixAt]); err != nil {
			return err
		}
		if _, err := c.w.Write(spans[i].prefix); err != nil {
			return err
		}
		if err := c.w.Flush(); err != nil {
			return err
		}
		if err := c.sendChunk(r.chunk); err != nil {
			// Part of the response is out: the stream cannot be repaired.
			return fmt.Errorf("send record set from %s: %w", r.chunk.File.Name(), err)
		}
		pos = spans[i].dataAt + len(placeholder)
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

// sendChunk sends a record set from its file in pieces, each with a fresh
// write deadline, as deadlineWriter does for bytes in memory.
func (c *conn) sendChunk(ch storage.Chunk) error {
	dw := deadlineWriter{c.nc, c.b.writeTimeout}
	for ch.Len > 0 {
		piece := ch
		piece.Len = min(ch.Len, deadlinePiece)
		dw.refresh()
		if err := sendFile(c.nc, piece); err != nil {
			return err
		}
		ch.Pos += piece.Len
		ch.Len -= piece.Len
	}
	return nil
}
