//go:build !linux

package broker

import (
	"io"
	"net"

	"github.com/creek-pipeline/creek/internal/storage"
)

// sendFile copies a chunk of a segment file to the connection.
func sendFile(nc net.Conn, c storage.Chunk) error { return copyChunk(nc, c) }

func copyChunk(w io.Writer, c storage.Chunk) error {
	_, err := io.Copy(w, io.NewSectionReader(c.File, c.Pos, c.Len))
	return err
}
