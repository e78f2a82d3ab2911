package broker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/auth"
	"github.com/creek-pipeline/creek/internal/storage"
)

// TestSendfileFetchRoundTrip produces incompressible records large enough
// that fetches take the sendfile path and checks every byte comes back.
func TestSendfileFetchRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("big"),
		kgo.AllowAutoTopicCreation(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := make([][]byte, 600)
	for i := range want {
		want[i] = make([]byte, 8<<10)
		rand.Read(want[i])
		prod.Produce(ctx, &kgo.Record{Value: want[i]}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("big"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxPartitionBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for got := 0; got < len(want); {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !bytes.Equal(r.Value, want[r.Offset]) {
				t.Fatalf("record %d differs after the fetch", r.Offset)
			}
			got++
		})
	}
}

// TestRegionWritePaths checks that a response written with file regions is
// byte for byte the response kmsg would encode with the data in memory,
// over TCP (sendfile) and over a pipe (copy).
func TestRegionWritePaths(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 3*sendfileMin)
	rand.Read(data)
	f, err := os.Create(filepath.Join(dir, "seg"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("prefix-bytes"))
	f.Write(data)
	defer f.Close()

	for _, version := range []int16{11, 12} { // the last non-flexible version and the first flexible one
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) { regionWritePaths(t, version, f, data) })
	}
}

func regionWritePaths(t *testing.T, version int16, f *os.File, data []byte) {
	build := func(records []byte) *fetchResponse {
		fr := &fetchResponse{FetchResponse: kmsg.NewPtrFetchResponse()}
		fr.Version = version
		st := kmsg.NewFetchResponseTopic()
		st.Topic = "t"
		for p := int32(0); p < 2; p++ {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition, sp.HighWatermark = p, 42
			sp.RecordBatches = records
			st.Partitions = append(st.Partitions, sp)
		}
		fr.Topics = []kmsg.FetchResponseTopic{st}
		return fr
	}
	expected := build(data)
	wantBody := expected.AppendTo(nil)

	withRegions := func() *fetchResponse {
		fr := build(nil)
		for i := range fr.Topics[0].Partitions {
			sp := &fr.Topics[0].Partitions[i]
			chunk := storage.Chunk{File: f, Pos: 12, Len: int64(len(data))}
			sp.RecordBatches = placeholder
			fr.regions = append(fr.regions, region{chunk: chunk, dst: &sp.RecordBatches})
		}
		return fr
	}

	for _, network := range []string{"tcp", "pipe"} {
		var server, client net.Conn
		if network == "pipe" {
			server, client = net.Pipe()
		} else {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			accepted := make(chan net.Conn)
			go func() { c, _ := ln.Accept(); accepted <- c }()
			client, _ = net.Dial("tcp", ln.Addr().String())
			server = <-accepted
			ln.Close()
		}
		b := &Broker{logger: discardLogger()}
		c := newConn(b, server, &listener{Listener: auth.Listener{Name: "PLAINTEXT", Protocol: auth.Plaintext}})
		go func() {
			c.respond(&pending{key: kmsg.Fetch.Int16(), corr: 7, resp: withRegions()}, true)
			server.Close()
		}()
		got, err := io.ReadAll(client)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < 8 || int(binary.BigEndian.Uint32(got)) != len(got)-4 || binary.BigEndian.Uint32(got[4:]) != 7 {
			t.Fatalf("%s: bad frame header", network)
		}
		body := got[8:]
		if version >= 12 { // flexible: the response header ends with an empty tag section
			body = got[9:]
		}
		if !bytes.Equal(body, wantBody) {
			t.Fatalf("%s: response differs from kmsg's encoding with the data in memory", network)
		}
	}
}
