package referee

import (
	"context"
	"encoding/json"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetsTopicRecords: the same commits, group rebalances and
// deletions on creek and on Kafka leave the same records in
// __consumer_offsets, in the same partition, as Kafka's own formatters
// (kafka-console-consumer --formatter ...OffsetsMessageFormatter and
// ...GroupMetadataMessageFormatter, what Burrow-like tools decode) print
// them.
func TestOffsetsTopicRecords(t *testing.T) {
	needKafka(t)
	p := newPair(t)
	topic, simple, member := uniqueName(t, "topic"), uniqueName(t, "simple"), uniqueName(t, "member")
	p.createTopic(topic, 2, nil)
	p.coordinatorReady(0, simple)
	p.coordinatorReady(0, member)
	p.same("DescribeConfigs of __consumer_offsets", 4, func(string) kmsg.Request {
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "__consumer_offsets"
		rr.ConfigNames = []string{"cleanup.policy", "compression.type", "segment.bytes"}
		req.Resources = append(req.Resources, rr)
		return req
	}, onlyConfigValues)

	for _, addr := range []string{creekAddr, kafkaAddr} {
		offsetsScenario(t, addr, topic, simple, member)
	}
	groups := []string{simple, member}
	var places [2]map[string][]int32
	for i, addr := range []string{creekAddr, kafkaAddr} {
		places[i] = waitForOffsetsRecords(t, addr, map[string]int{simple: 5, member: 4})
	}
	for _, g := range groups {
		if !slices.Equal(places[0][g], places[1][g]) {
			t.Errorf("group %s's records are in partitions %v on creek, %v on Kafka", g, places[0][g], places[1][g])
		}
	}

	for _, formatter := range []string{"OffsetsMessageFormatter", "GroupMetadataMessageFormatter"} {
		c, k := onBoth(t, "", consumerTool, bootstrapFlag, brokerArg, "--topic", "__consumer_offsets", "--from-beginning",
			"--timeout-ms", "4000", "--formatter", "org.apache.kafka.tools.consumer."+formatter)
		creek, kafka := formattedRecords(t, c.stdout, groups), formattedRecords(t, k.stdout, groups)
		if len(kafka) == 0 {
			t.Fatalf("%s printed no record of the test's groups from Kafka:\n%s", formatter, k)
		}
		if !slices.Equal(creek, kafka) {
			t.Errorf("%s prints creek's records differently:\ncreek:\n%s\nkafka:\n%s", formatter, strings.Join(creek, "\n"), strings.Join(kafka, "\n"))
		}
	}
}

// onlyConfigValues keeps what a DescribeConfigs answer says of each
// config's value and source, not its documentation or synonyms.
func onlyConfigValues(resp kmsg.Response) {
	for i := range resp.(*kmsg.DescribeConfigsResponse).Resources {
		r := &resp.(*kmsg.DescribeConfigsResponse).Resources[i]
		slices.SortFunc(r.Configs, func(a, b kmsg.DescribeConfigsResponseResourceConfig) int { return strings.Compare(a.Name, b.Name) })
		for j := range r.Configs {
			r.Configs[j].Documentation, r.Configs[j].ConfigSynonyms = nil, nil
		}
	}
}

// offsetsScenario commits, rebalances and deletes on one broker: a client
// that commits without joining and then deletes an offset and its group,
// and a classic group's one member that consumes, commits and leaves.
func offsetsScenario(t *testing.T, addr, topic, simple, member string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// One commit of two partitions, in this order (kadm's come in a map's).
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = simple, -1
	details, err := adm.ListTopics(ctx, topic)
	if err != nil || details.Error() != nil {
		t.Fatalf("%s: metadata: %v %v", addr, err, details.Error())
	}
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic, ct.TopicID = topic, details[topic].ID // v10 names topics by id
	for _, c := range []struct {
		offset   int64
		epoch    int32
		metadata string
	}{{5, -1, "m"}, {7, 3, ""}} {
		cp := kmsg.NewOffsetCommitRequestTopicPartition()
		cp.Partition, cp.Offset, cp.LeaderEpoch, cp.Metadata = int32(len(ct.Partitions)), c.offset, c.epoch, kmsg.StringPtr(c.metadata)
		ct.Partitions = append(ct.Partitions, cp)
	}
	commit.Topics = append(commit.Topics, ct)
	resp, err := commit.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("%s: commit: %v", addr, err)
	}
	for _, rp := range resp.Topics[0].Partitions {
		if rp.ErrorCode != 0 {
			t.Fatalf("%s: commit of partition %d: error %d", addr, rp.Partition, rp.ErrorCode)
		}
	}
	if r, err := adm.DeleteOffsets(ctx, simple, kadm.TopicsSet{topic: {1: {}}}); err != nil || r.Error() != nil {
		t.Fatalf("%s: delete offsets: %v %v", addr, err, r.Error())
	}
	if r, err := adm.DeleteGroups(ctx, simple); err != nil || r.Error() != nil {
		t.Fatalf("%s: delete group: %v %v", addr, err, r.Error())
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("%s: produce: %v", addr, err)
	}

	c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(member), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.RangeBalancer()), kgo.DisableAutoCommit(), kgo.ClientID("referee"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 1 && ctx.Err() == nil; {
		n += c.PollFetches(ctx).NumRecords()
	}
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("%s: commit as a member: %v", addr, err)
	}
	c.Close() // leaves the group
}

// waitForOffsetsRecords reads __consumer_offsets on one broker until each
// group has as many records as wanted (Kafka writes a group's becoming
// empty a moment after its member left) and returns the partitions each
// group's records are in.
func waitForOffsetsRecords(t *testing.T, addr string, want map[string]int) map[string][]int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("__consumer_offsets"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	counts, places := map[string]int{}, map[string][]int32{}
	done := func() bool {
		for g, n := range want {
			if counts[g] < n {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: __consumer_offsets holds %v records of the test's groups after 30 s, want %v", addr, counts, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var key kmsg.GroupMetadataKey // the group id comes first in both key kinds
			if key.ReadFrom(r.Key) != nil {
				return
			}
			if _, ok := want[key.Group]; ok {
				counts[key.Group]++
				if !slices.Contains(places[key.Group], r.Partition) {
					places[key.Group] = append(places[key.Group], r.Partition)
				}
			}
		})
	}
	return places
}

// What must differ between two brokers' records: ids they make, times,
// and the member id franz-go puts in its commits' metadata.
var (
	memberIDs  = regexp.MustCompile(`referee-[0-9a-f-]{36}`)
	timestamps = regexp.MustCompile(`"(commitTimestamp|currentStateTimestamp)":\d+`)
	topicIDs   = regexp.MustCompile(`"topicId":"[^"]+"`)
)

// formattedRecords are the records of the given groups that a formatter
// printed (JSON objects, one after another), each with what must differ
// put aside.
func formattedRecords(t *testing.T, out string, groups []string) []string {
	t.Helper()
	var records []string
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var rec struct {
			Key struct {
				Data struct{ Group string } `json:"data"`
			} `json:"key"`
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("formatter output is not JSON (%v):\n%s", err, out)
		}
		if json.Unmarshal(raw, &rec) != nil || !slices.Contains(groups, rec.Key.Data.Group) {
			continue
		}
		s := memberIDs.ReplaceAllString(string(raw), "MEMBER")
		s = timestamps.ReplaceAllString(s, `"$1":TIME`)
		s = topicIDs.ReplaceAllString(s, `"topicId":"ID"`)
		records = append(records, s)
	}
	return records
}
