package e2e

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A client asking for more partitions than the broker has open files for
// is refused in one line that says what to raise, and the broker keeps room
// for everyone else: with a limit of 2,048 open files, a topic of 900
// partitions is created, a second one is refused, and new connections and
// produce still work. Before, the second was created and left the broker a
// few hundred files; a third stopped at "too many open files" with none.
func TestPartitionsAreRefusedBeforeOpenFilesRunOut(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("skip: no bash to start the broker with a lower open-file limit")
	}
	port := freePort(t)
	addr := "127.0.0.1:" + port
	cmd := exec.Command("bash", "-c", `ulimit -n 2048 && exec "$0" broker --listen "$1" --data-dir "$2" --log-level warn`, creekBin, addr, t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("broker said:\n%s", stderr.String())
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if _, err := adm.ListTopics(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the broker did not start: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	if _, err := adm.CreateTopic(ctx, 900, 1, nil, "first"); err != nil {
		t.Fatalf("900 partitions within the limit: %v", err)
	}
	resp, err := adm.CreateTopic(ctx, 900, 1, nil, "second")
	if !errors.Is(err, kerr.InvalidPartitions) || !strings.Contains(resp.ErrMessage, "ulimit -n") {
		t.Fatalf("900 more partitions with 2,048 open files allowed: %v (%s), want INVALID_PARTITIONS saying to raise ulimit -n", err, resp.ErrMessage)
	}
	t.Logf("refused: %s", resp.ErrMessage)

	// Room is left for clients: fresh connections produce and read back.
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "small"); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("small"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.ProduceSync(ctx, kgo.StringRecord("r"+strconv.Itoa(i))).FirstErr(); err != nil {
			t.Fatalf("produce on connection %d after the refusal: %v", i, err)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, "small")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("small", 0); o.Offset != 20 {
		t.Fatalf("small ends at %d, want 20", o.Offset)
	}
}
