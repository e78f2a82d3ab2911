package dashboard

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/creek-pipeline/creek/internal/clusterview"
)

// The API answers what the pages need about a real broker with a real
// pipeline: topics with offsets and configs, the consumer group with its
// lag, records from the browser and the live stream, analytics, and
// /metrics with kafka_exporter's names; and the figures move.
func TestAPIAgainstABroker(t *testing.T) {
	s := startStack(t, stackOptions{})

	var first overview
	waitFor(t, "the pipeline to show records and both groups", func() bool {
		first = get[overview](t, s.url+"/api/overview")
		return first.Status.Up && first.Records > 20 && first.Groups >= 2 && len(first.Pipeline.Pipelines) == 2 && first.Pipeline.Pipelines[1].Out > 0
	})
	if first.Topic != "tweets" || first.Topics != 1 || first.Partitions != 2 || len(first.Brokers) != 1 {
		t.Fatalf("overview: %+v", first)
	}
	waitFor(t, "counts to move", func() bool {
		o := get[overview](t, s.url+"/api/overview")
		return o.Records > first.Records && o.Pipeline.Pipelines[0].Out > first.Pipeline.Pipelines[0].Out && o.InRate > 0
	})

	topics := get[struct{ Topics []topicRow }](t, s.url+"/api/topics")
	if len(topics.Topics) != 1 || topics.Topics[0].Name != "tweets" || topics.Topics[0].Partitions != 2 || topics.Topics[0].Size <= 0 {
		t.Fatalf("topics: %+v", topics)
	}
	detail := get[topicDetail](t, s.url+"/api/topics/tweets")
	if detail.RetentionBytes != 1<<30 || len(detail.Topic.Partitions) != 2 || detail.Topic.Partitions[0].End <= 0 {
		t.Fatalf("topic detail: retention %d, partitions %+v, error %q", detail.RetentionBytes, detail.Topic.Partitions, detail.ConfigsError)
	}
	var sourced bool
	for _, c := range detail.Configs {
		sourced = sourced || c.Name == "retention.bytes" && c.Source != ""
	}
	if !sourced {
		t.Fatalf("configs lack retention.bytes with its source: %+v", detail.Configs)
	}

	var g struct {
		Group clusterview.Group
	}
	waitFor(t, "the group readers to commit", func() bool {
		g = get[struct{ Group clusterview.Group }](t, s.url+"/api/groups/readers")
		return len(g.Group.Partitions) == 2 && g.Group.Partitions[0].Committed > 0
	})
	if g.Group.Type != "classic" || g.Group.State != "Stable" || len(g.Group.Members) != 1 || len(g.Group.LagHistory) == 0 {
		t.Fatalf("group: %+v", g.Group)
	}
	groups := get[struct{ Groups []groupRow }](t, s.url+"/api/groups")
	names := map[string]bool{}
	for _, r := range groups.Groups {
		names[r.Group] = true
	}
	if !names["readers"] || !names[AnalyticsGroup] {
		t.Fatalf("groups: %+v", groups)
	}

	msgs := get[browseResult](t, s.url+"/api/topics/tweets/messages?partition=1&offset=0&limit=5")
	if len(msgs.Records) != 5 || msgs.Records[0].Offset != 0 || msgs.Next != 5 || msgs.Records[0].Tweet == nil || msgs.Records[0].Tweet.Text == "" {
		t.Fatalf("browse: %+v", msgs)
	}
	word := strings.Fields(msgs.Records[3].Tweet.Text)[0]
	found := get[browseResult](t, s.url+"/api/topics/tweets/messages?partition=1&limit=3&q="+url.QueryEscape(word))
	if len(found.Records) == 0 {
		t.Fatalf("search for %q found nothing", word)
	}
	for _, r := range found.Records {
		if !strings.Contains(strings.ToLower(string(r.Value)), strings.ToLower(word)) {
			t.Fatalf("search for %q returned %s", word, r.Value)
		}
	}
	key := *msgs.Records[2].Key
	byKey := get[browseResult](t, s.url+"/api/topics/tweets/messages?partition=1&limit=3&key="+url.QueryEscape(key))
	if len(byKey.Records) == 0 || *byKey.Records[0].Key != key {
		t.Fatalf("key search for %q: %+v", key, byKey.Records)
	}
	at := get[browseResult](t, s.url+"/api/topics/tweets/messages?partition=1&limit=1&time="+url.QueryEscape(msgs.Records[4].Timestamp))
	if len(at.Records) != 1 || at.Records[0].Offset > 4 {
		t.Fatalf("from time %s: %+v", msgs.Records[4].Timestamp, at.Records)
	}
	if resp, _ := http.Get(s.url + "/api/topics/tweets/messages?limit=zero"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad limit answered %s", resp.Status)
	}
	if resp, _ := http.Get(s.url + "/api/topics/nope"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown topic answered %s", resp.Status)
	}

	live := sseRecords(t, s.url+"/api/live?topic=tweets", 25)
	if live[0].Tweet == nil || live[len(live)-1].Offset == live[0].Offset && live[len(live)-1].Partition == live[0].Partition {
		t.Fatalf("live records: %+v", live[:2])
	}

	waitFor(t, "analytics to count tweets", func() bool {
		a := get[analyticsView](t, s.url+"/api/analytics")
		return a.Tweets > 10 && len(a.Hashtags) > 0 && len(a.Authors) > 0 && len(a.Languages) > 0
	})

	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"kafka_brokers 1", `kafka_topic_partitions{topic="tweets"} 2`, `kafka_topic_partition_current_offset{partition="0",topic="tweets"}`,
		`kafka_topic_partition_oldest_offset{partition="1",topic="tweets"} 0`, `kafka_consumergroup_current_offset{consumergroup="readers",partition="0",topic="tweets"}`,
		`kafka_consumergroup_lag{consumergroup="readers",partition="1",topic="tweets"}`, `kafka_consumergroup_members{consumergroup="readers"} 1`,
		`creek_broker_requests_total{api="Produce"`, `creek_log_size_bytes{partition="0",topic="tweets"}`, "creek_log_fsync_duration_seconds_count",
		`creek_pipeline_records_in_total{pipeline="collector",stage="source generate"}`, `creek_pipeline_sink_batch_duration_seconds_count{pipeline="archive",sink="file"}`,
		"creek_cluster_up 1", "go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// A broker that goes away shows as down with the last figures it gave,
// never as an empty answer.
func TestBrokerDownKeepsLastFigures(t *testing.T) {
	s := startStack(t, stackOptions{})
	waitFor(t, "records", func() bool { return get[overview](t, s.url+"/api/overview").Records > 10 })
	s.stopPipelines() // their producer would wait for the broker to come back
	s.broker.Close()
	var o overview
	waitFor(t, "the broker to show as down", func() bool {
		o = get[overview](t, s.url+"/api/overview")
		return !o.Status.Up
	})
	if o.Status.Error == "" || o.Records <= 10 || o.Topics != 1 || o.Status.LastOK.IsZero() {
		t.Fatalf("down overview: %+v", o)
	}
	if tp := get[struct {
		Status Status
		Topics []topicRow
	}](t, s.url+"/api/topics"); len(tp.Topics) != 1 || tp.Status.Up {
		t.Fatalf("down topics: %+v", tp)
	}
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "creek_cluster_up 0") || strings.Contains(string(body), "kafka_brokers") {
		t.Fatalf("metrics while down should say creek_cluster_up 0 and no stale kafka_ figures")
	}
}

// Without --http-admin every change is refused; with it, changes need the
// confirmation header and run the CLI's code.
func TestActions(t *testing.T) {
	ro := startStack(t, stackOptions{})
	if code, _ := send(t, "POST", ro.url+"/api/topics", `{"name":"x"}`, true); code != http.StatusForbidden {
		t.Fatalf("read-only dashboard answered %d to a create", code)
	}
	s := startStack(t, stackOptions{admin: true})
	if code, _ := send(t, "POST", s.url+"/api/topics", `{"name":"x"}`, false); code != http.StatusBadRequest {
		t.Fatalf("create without confirmation answered %d", code)
	}
	if code, body := send(t, "POST", s.url+"/api/topics", `{"name":"made-here","partitions":3,"configs":{"retention.bytes":"1048576"}}`, true); code != http.StatusOK ||
		!strings.Contains(body, "created topic made-here: 3 partitions") {
		t.Fatalf("create: %d %s", code, body)
	}
	waitFor(t, "the new topic", func() bool { _, ok := s.srv.View().Snapshot().Topic("made-here"); return ok })
	if d := get[topicDetail](t, s.url+"/api/topics/made-here"); d.RetentionBytes != 1048576 || len(d.Topic.Partitions) != 3 {
		t.Fatalf("created topic: %+v", d)
	}
	if code, body := send(t, "POST", s.url+"/api/topics", `{"name":"made-here"}`, true); code != http.StatusConflict || !strings.Contains(body, "already exists") {
		t.Fatalf("second create: %d %s", code, body)
	}
	if code, body := send(t, "POST", s.url+"/api/topics", `{"name":`, true); code != http.StatusBadRequest || !strings.Contains(body, "malformed JSON") {
		t.Fatalf("malformed body: %d %s", code, body)
	}
	waitFor(t, "readers to have a member", func() bool { g, ok := s.srv.View().Snapshot().Group("readers"); return ok && len(g.Members) == 1 })
	if code, body := send(t, "POST", s.url+"/api/groups/readers/reset-offsets", `{"topics":["tweets"],"to":"earliest"}`, true); code != http.StatusConflict ||
		!strings.Contains(body, "active member") {
		t.Fatalf("reset of an active group: %d %s", code, body)
	}
	if code, body := send(t, "POST", s.url+"/api/groups/later/reset-offsets", `{"topics":["tweets"],"to":"latest"}`, true); code != http.StatusOK ||
		!strings.Contains(body, `"applied":true`) {
		t.Fatalf("reset of a new group: %d %s", code, body)
	}
	if code, body := send(t, "DELETE", s.url+"/api/topics/made-here", "", true); code != http.StatusOK || !strings.Contains(body, "deleted topic made-here") {
		t.Fatalf("delete: %d %s", code, body)
	}
}

func send(t *testing.T, method, url, body string, confirm bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if confirm {
		req.Header.Set("X-Creek-Confirm", "yes")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Credentials guard pages, API and metrics alike; a refusal is a 401.
func TestAuth(t *testing.T) {
	s := startStack(t, stackOptions{auth: Auth{User: "admin", Password: "s3cret", Token: "tok-123"}})
	try := func(path string, set func(*http.Request)) int {
		req, _ := http.NewRequest("GET", s.url+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/", "/api/topics", "/metrics"} {
		if code := try(path, nil); code != http.StatusUnauthorized {
			t.Fatalf("%s without credentials: %d", path, code)
		}
	}
	if code := try("/api/topics", func(r *http.Request) { r.SetBasicAuth("admin", "wrong") }); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	if code := try("/api/topics", func(r *http.Request) { r.SetBasicAuth("admin", "s3cret") }); code != http.StatusOK {
		t.Fatalf("right password: %d", code)
	}
	if code := try("/metrics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok-123") }); code != http.StatusOK {
		t.Fatalf("token: %d", code)
	}
	if code := try("/?token=tok-123", nil); code != http.StatusOK {
		t.Fatalf("token parameter: %d", code)
	}

	for _, c := range []struct {
		addr     string
		auth     Auth
		insecure bool
		ok       bool
	}{
		{"localhost:9600", Auth{}, false, true},
		{"127.0.0.1:0", Auth{}, false, true},
		{"[::1]:9600", Auth{}, false, true},
		{":9600", Auth{}, false, false},
		{"0.0.0.0:9600", Auth{}, false, false},
		{"0.0.0.0:9600", Auth{}, true, true},
		{"0.0.0.0:9600", Auth{User: "a", Password: "b"}, false, true},
		{"0.0.0.0:9600", Auth{User: "a"}, false, false},
		{"0.0.0.0:9600", Auth{Token: "t"}, false, true},
	} {
		if err := CheckExposure(c.addr, c.auth, c.insecure); (err == nil) != c.ok {
			t.Errorf("CheckExposure(%q, %+v, %v) = %v", c.addr, c.auth, c.insecure, err)
		}
	}
}

func TestHashtags(t *testing.T) {
	got := hashtags("카프카로 트윗을 모읍니다 #kafka #데이터엔지니어링, #データ! #_x #")
	want := []string{"kafka", "데이터엔지니어링", "データ", "_x"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("hashtags %q, want %q", got, want)
	}
}
