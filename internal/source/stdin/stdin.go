// Package stdin is the source that reads standard input, one record per
// line, until it ends (like kafka-console-producer and kcat -P).
package stdin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

func init() {
	pipeline.RegisterSource(pipeline.Plugin{
		Name: "stdin",
		Doc:  "Reads standard input, one record per line.",
		Options: []pipeline.Option{
			{Name: "key-separator", Flag: "key-separator", Type: pipeline.TypeString,
				Doc: "Split each line at the first occurrence of this text into key and value (like kcat -K)."},
		},
		NewSource: func(v *pipeline.Values, env pipeline.Env) (pipeline.Source, error) {
			return &Source{R: os.Stdin, KeySeparator: []byte(v.String("key-separator"))}, nil
		},
	})
}

// Source reads lines from R.
type Source struct {
	R            io.Reader
	KeySeparator []byte
}

// Lines bigger than this are refused (a record that size is a mistake).
const maxLine = 16 << 20

// Run sends the lines of R; it ends at end of input. Lines that arrive
// together go out as one batch.
func (s *Source) Run(ctx context.Context, out chan<- *pipeline.Batch) error {
	lines := make(chan []byte, 1024)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		r := bufio.NewReaderSize(s.R, 64<<10)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > maxLine {
				readErr <- errors.New("a line of standard input is over 16 MiB")
				return
			}
			if len(line) > 0 {
				select {
				case lines <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					readErr <- err
				}
				return
			}
		}
	}()
	for {
		var b pipeline.Batch
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				select {
				case err := <-readErr:
					return err
				default:
					return nil
				}
			}
			b.Messages = append(b.Messages, s.message(line))
		}
		// Take whatever else has already arrived.
	more:
		for len(b.Messages) < 1000 {
			select {
			case line, ok := <-lines:
				if !ok {
					break more
				}
				b.Messages = append(b.Messages, s.message(line))
			default:
				break more
			}
		}
		if !pipeline.Send(ctx, out, &b) {
			return nil
		}
	}
}

func (s *Source) message(line []byte) pipeline.Message {
	line = bytes.TrimRight(line, "\r\n")
	m := pipeline.Message{Value: line, Timestamp: time.Now()}
	if len(s.KeySeparator) > 0 {
		if k, v, ok := bytes.Cut(line, s.KeySeparator); ok {
			m.Key, m.Value = k, v
		}
	}
	return m
}
