package broker

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/creek-pipeline/creek/internal/storage"
)

// sendFile copies a chunk of a segment file to a TCP connection inside the
// kernel, at the chunk's own offset (so concurrent fetches can share the
// file), waiting for the socket to drain when its buffer is full.
func sendFile(nc net.Conn, c storage.Chunk) error {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return copyChunk(nc, c)
	}
	sock, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	file, err := c.File.SyscallConn()
	if err != nil {
		return err
	}
	var sendErr error
	ctlErr := file.Control(func(ffd uintptr) {
		offset, remain := c.Pos, c.Len
		werr := sock.Write(func(sfd uintptr) bool {
			for remain > 0 {
				n, err := syscall.Sendfile(int(sfd), int(ffd), &offset, int(min(remain, 1<<30)))
				if n > 0 {
					remain -= int64(n)
				}
				switch {
				case errors.Is(err, syscall.EAGAIN):
					return false // wait until the socket is writable
				case errors.Is(err, syscall.EINTR):
				case err != nil:
					sendErr = err
					return true
				case n == 0:
					sendErr = io.ErrUnexpectedEOF // the file is shorter than the chunk
					return true
				}
			}
			return true
		})
		if sendErr == nil {
			sendErr = werr
		}
	})
	if ctlErr != nil {
		return ctlErr
	}
	return sendErr
}

func copyChunk(w io.Writer, c storage.Chunk) error {
	_, err := io.Copy(w, io.NewSectionReader(c.File, c.Pos, c.Len))
	return err
}
