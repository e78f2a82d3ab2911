package stdin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

func readAll(t *testing.T, s *Source) ([]pipeline.Message, error) {
	t.Helper()
	out := make(chan *pipeline.Batch, 100)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), out); close(out) }()
	var msgs []pipeline.Message
	for b := range out {
		msgs = append(msgs, b.Messages...)
	}
	select {
	case err := <-done:
		return msgs, err
	case <-time.After(5 * time.Second):
		t.Fatal("the stdin source did not end at the end of input")
		return nil, nil
	}
}

func TestStdinLines(t *testing.T) {
	msgs, err := readAll(t, &Source{R: strings.NewReader("first\r\nk:v:w\n\n한국어\nno newline at the end")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Value))
	}
	if strings.Join(got, "|") != "first|k:v:w||한국어|no newline at the end" {
		t.Fatalf("lines %q", got)
	}
}

func TestStdinKeySeparator(t *testing.T) {
	msgs, err := readAll(t, &Source{R: strings.NewReader("k1:v1\nno separator\nk3:v:3\n"), KeySeparator: []byte(":")})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"k1", "v1"}, {"", "no separator"}, {"k3", "v:3"}}
	for i, m := range msgs {
		if string(m.Key) != want[i][0] || string(m.Value) != want[i][1] {
			t.Fatalf("line %d: key %q value %q, want %q", i, m.Key, m.Value, want[i])
		}
	}
}

func TestStdinRefusesHugeLines(t *testing.T) {
	_, err := readAll(t, &Source{R: strings.NewReader(strings.Repeat("x", maxLine+10) + "\n")})
	if err == nil || !strings.Contains(err.Error(), "16 MiB") {
		t.Fatalf("a line over 16 MiB: %v", err)
	}
}
