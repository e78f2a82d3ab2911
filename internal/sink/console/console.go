// Package console is the sink that shows records on screen, which is what
// the seed's consumer does. Formats: pretty (tweets read as a line of
// time, author, language and text; other records as text), json (one
// object per record, in the record JSON shared with the file and S3 sinks), raw (the value alone) and a kcat-style format string.
package console

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-runewidth"
	"golang.org/x/term"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/recordjson"
	"github.com/creek-pipeline/creek/internal/tweet"
)

func init() {
	pipeline.RegisterSink(pipeline.Plugin{
		Name: "console",
		Doc:  "Prints records on standard output.",
		Options: []pipeline.Option{
			{Name: "format", Flag: "format", Type: pipeline.TypeString, Default: "pretty",
				Doc: "pretty, json, raw, or a kcat-style format string such as '%t %p %o %k %s\\n' (%t topic, %p partition, %o offset, %k key, %s value, %T timestamp in ms, %h headers, %K/%S key/value length, \\n \\t, %%)."},
			{Name: "color", Flag: "color", Type: pipeline.TypeString, Default: "auto", Enum: []string{"auto", "always", "never"},
				Doc: "Colour the pretty format: auto colours only on a terminal."},
		},
		NewSink: func(v *pipeline.Values, env pipeline.Env) (pipeline.Sink, error) {
			return New(os.Stdout, v.String("format"), v.String("color"))
		},
	})
}

// Sink prints records.
type Sink struct {
	w        *bufio.Writer
	format   string
	pieces   []piece // parsed custom format
	color    bool
	width    int    // terminal width, 0 when unknown
	buf      []byte // the json format's line
	Location *time.Location
}

// New returns a console sink writing to w.
func New(w io.Writer, format, color string) (*Sink, error) {
	s := &Sink{w: bufio.NewWriterSize(w, 64<<10), format: format, Location: time.Local}
	tty := false
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		tty = true
		if width, _, err := term.GetSize(int(f.Fd())); err == nil {
			s.width = width
		}
	}
	switch color {
	case "always":
		s.color = true
	case "auto", "":
		s.color = tty && os.Getenv("NO_COLOR") == ""
	}
	switch format {
	case "pretty", "json", "raw":
	default:
		pieces, err := parseFormat(format)
		if err != nil {
			return nil, err
		}
		s.pieces, s.format = pieces, "custom"
	}
	return s, nil
}

// Write prints a batch; it is durable once it reaches standard output.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	for i := range b.Messages {
		s.writeOne(&b.Messages[i])
	}
	return s.w.Flush()
}

// Close flushes.
func (s *Sink) Close() error { return s.w.Flush() }

func (s *Sink) writeOne(m *pipeline.Message) {
	switch s.format {
	case "raw":
		s.w.Write(m.Value)
		s.w.WriteByte('\n')
	case "json":
		s.writeJSON(m)
	case "custom":
		for _, p := range s.pieces {
			p.write(s.w, m)
		}
	default:
		s.writePretty(m)
	}
}

const (
	dim   = "\x1b[2m"
	cyan  = "\x1b[36m"
	bold  = "\x1b[1m"
	reset = "\x1b[0m"
)

func (s *Sink) paint(code, text string) string {
	if !s.color {
		return text
	}
	return code + text + reset
}

// handleWidth is the column width of "@handle" so texts line up.
const handleWidth = 16

// writePretty prints a tweet as "15:04:05 @handle [lang] text" and any other
// record as "15:04:05 key: value", with where it came from dimmed.
func (s *Sink) writePretty(m *pipeline.Message) {
	var line strings.Builder
	e, isTweet := tweet.Parse(m.Value)
	ts := m.Timestamp
	if isTweet {
		if t, ok := e.Created(); ok {
			ts = t
		}
	}
	if !ts.IsZero() {
		line.WriteString(s.paint(dim, ts.In(s.Location).Format("15:04:05")) + " ")
	}
	prefixWidth := 9
	var text string
	if isTweet {
		handle := "@" + e.Data.AuthorID
		if u, ok := e.Author(); ok {
			handle = "@" + u.Username
		}
		line.WriteString(s.paint(cyan+bold, runewidth.FillRight(handle, handleWidth)))
		line.WriteString(" ")
		lang := e.Data.Lang
		if lang == "" {
			lang = "--"
		}
		line.WriteString(s.paint(dim, "["+lang+"]") + " ")
		prefixWidth += max(handleWidth, runewidth.StringWidth(handle)) + 1 + len(lang) + 3
		text = oneLine(e.Data.Text)
	} else {
		if len(m.Key) > 0 {
			k := printable(m.Key)
			line.WriteString(s.paint(cyan, k) + ": ")
			prefixWidth += runewidth.StringWidth(k) + 2
		}
		text = oneLine(printable(m.Value))
	}
	origin := ""
	if m.Topic != "" {
		origin = fmt.Sprintf("%s/%d@%d", m.Topic, m.Partition, m.Offset)
	}
	if s.width > 0 { // on a terminal: keep each record on one screen line
		room := s.width - prefixWidth - len(origin) - 2
		if room > 10 && runewidth.StringWidth(text) > room {
			text = runewidth.Truncate(text, room, "…")
		}
	}
	line.WriteString(text)
	if origin != "" {
		line.WriteString("  " + s.paint(dim, origin))
	}
	line.WriteByte('\n')
	s.w.WriteString(line.String())
}

func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ⏎ ", "\n", " ⏎ ", "\r", " ").Replace(s)
}

// printable shows text as is and other bytes escaped.
func printable(b []byte) string { return recordjson.Printable(b) }

func (s *Sink) writeJSON(m *pipeline.Message) {
	s.buf = recordjson.Append(s.buf[:0], m)
	s.w.Write(s.buf)
}

// piece is a literal or a %-verb of a custom format.
type piece struct {
	lit  string
	verb byte
}

func parseFormat(f string) ([]piece, error) {
	var out []piece
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, piece{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch {
		case c == '\\' && i+1 < len(f):
			i++
			switch f[i] {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '\\':
				lit.WriteByte('\\')
			default:
				lit.WriteByte('\\')
				lit.WriteByte(f[i])
			}
		case c == '%' && i+1 < len(f):
			i++
			switch f[i] {
			case '%':
				lit.WriteByte('%')
			case 't', 'p', 'o', 'k', 's', 'T', 'h', 'K', 'S':
				flush()
				out = append(out, piece{verb: f[i]})
			default:
				return nil, fmt.Errorf("format %q: unknown %%%c (use %%t %%p %%o %%k %%s %%T %%h %%K %%S %%%%)", f, f[i])
			}
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return out, nil
}

func (p piece) write(w *bufio.Writer, m *pipeline.Message) {
	switch p.verb {
	case 0:
		w.WriteString(p.lit)
	case 't':
		w.WriteString(m.Topic)
	case 'p':
		w.WriteString(strconv.Itoa(int(m.Partition)))
	case 'o':
		w.WriteString(strconv.FormatInt(m.Offset, 10))
	case 'k':
		w.Write(m.Key)
	case 's':
		w.Write(m.Value)
	case 'T':
		if m.Timestamp.IsZero() {
			w.WriteString("-1") // as kcat shows a record without a timestamp
			break
		}
		w.WriteString(strconv.FormatInt(m.Timestamp.UnixMilli(), 10))
	case 'K':
		w.WriteString(strconv.Itoa(len(m.Key)))
	case 'S':
		w.WriteString(strconv.Itoa(len(m.Value)))
	case 'h':
		for i, h := range m.Headers {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(h.Key + "=" + printable(h.Value))
		}
	}
}
