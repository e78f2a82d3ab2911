package generate

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// The material synthetic tweets are made of.

type author struct {
	id       string // 5000+n
	handle   string
	name     string
	userJSON []byte // the expanded user object
}

func newAuthor(n int, handle, name string) author {
	a := author{id: strconv.Itoa(5000 + n), handle: handle, name: name}
	a.userJSON, _ = json.Marshal(struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Username string `json:"username"`
	}{a.id, name, handle})
	return a
}

var authors = func() []author {
	handles := []struct{ handle, name string }{
		{"minji_data", "김민지"}, {"jun_streams", "이준호"}, {"sora_dev", "박소라"}, {"hyun_ops", "최현우"},
		{"yuna_cloud", "정유나"}, {"dohyun_ml", "강도현"}, {"seoyeon_pm", "윤서연"}, {"taeho_sre", "임태호"},
		{"kafka_fan", "Kafka Fan"}, {"datadave", "Dave Miller"}, {"streamsally", "Sally Chen"}, {"ops_olivia", "Olivia Park"},
		{"logstash_lee", "Lee Logs"}, {"pipeline_pat", "Pat Rivera"}, {"bytes_ben", "Ben Okafor"}, {"queue_quinn", "Quinn Ito"},
	}
	var out []author
	for i, h := range handles {
		out = append(out, newAuthor(i+1, h.handle, h.name))
	}
	// A long tail of plain accounts, as on the real stream.
	for i := len(handles) + 1; i <= 400; i++ {
		out = append(out, newAuthor(i, fmt.Sprintf("user%d", 5000+i), fmt.Sprintf("User %d", 5000+i)))
	}
	return out
}()

var korean = phrases("ko",
	"카프카로 트윗을 모읍니다",
	"데이터 파이프라인 스터디 4일차, 오늘은 프로듀서와 컨슈머",
	"로그스태시 설정 끝! 이제 큐에 쌓이는 걸 지켜보는 중",
	"컨슈머 그룹마다 자기가 읽은 위치를 기억한다니 신기하다",
	"EC2 두 대로 카프카 실습 중입니다",
	"보존 용량 1GB 넘으면 폭포처럼 떨어진다는 비유가 찰떡",
	"S3에 로그를 동기화하고 대시보드를 만들었어요",
	"오늘 처리한 이벤트가 벌써 백만 건을 넘었네요",
	"스트림 처리는 역시 실시간이 생명",
	"엘라스틱서치에 넣고 키바나로 보니까 한눈에 보인다",
	"다이나모DB에 저장하는 컨슈머 추가 완료",
	"보안 그룹 인바운드 9092 포트 열어두는 거 잊지 말기",
	"파티션을 늘렸더니 처리량이 확 올라갔다",
	"퇴근길에 읽는 카프카 논문, 로그가 전부다",
	"수집량보다 소비량이 더 많을 수도 있다는 게 포인트",
	"새벽 배포 끝, 지연 시간 그래프가 평평해서 기분 좋음",
)

var english = phrases("en",
	"Collecting tweets into Kafka with a tiny pipeline",
	"Consumer groups remember their offsets, so restarts are painless",
	"Just set retention.bytes to 1GB; old segments fall off like a waterfall",
	"Streaming logs from two EC2 instances into one queue",
	"Our dashboard reads straight from the topic now",
	"Replaying yesterday's events from offset zero, no drama",
	"Backpressure saved us during the traffic spike today",
	"Idempotent producers: retries without duplicates",
	"Shipping logs to S3 every hour for the analysts",
	"Lag is down to zero after adding two more consumers",
	"Kafka is a log, not a queue, and that changes everything",
	"Benchmarking the broker on a 2-core box this afternoon",
	"Elasticsearch sink is live, search feels instant",
	"Another day, another million events through the pipe",
)

var japanese = phrases("ja",
	"カフカでツイートを集めています",
	"ストリーム処理の勉強中",
	"コンシューマーグループ便利すぎる",
)

// phrase is a tweet's text before its hashtags.
type phrase struct {
	text, lang string
	openJSON   []byte // the text as a JSON string, without the closing quote
}

func phrases(lang string, texts ...string) []phrase {
	out := make([]phrase, len(texts))
	for i, t := range texts {
		q, _ := json.Marshal(t)
		out[i] = phrase{text: t, lang: lang, openJSON: q[:len(q)-1]}
	}
	return out
}

type topic struct {
	tag    string // hashtag in the text
	rule   string // tag of the matching rule
	ruleID string

	hashJSON   []byte // " #tag" inside a JSON string
	ruleJSON   []byte // the matching_rules entry
	ruleHeader []byte // the rule header's value
}

func newTopic(tag, rule, ruleID string) topic {
	t := topic{tag: tag, rule: rule, ruleID: ruleID, ruleHeader: []byte(rule)}
	q, _ := json.Marshal(" #" + tag)
	t.hashJSON = q[1 : len(q)-1]
	t.ruleJSON, _ = json.Marshal(struct {
		ID  string `json:"id"`
		Tag string `json:"tag"`
	}{ruleID, rule})
	return t
}

var topics = []topic{
	newTopic("kafka", "kafka", "1860000000000000101"),
	newTopic("카프카", "kafka", "1860000000000000101"),
	newTopic("dataengineering", "data", "1860000000000000102"),
	newTopic("데이터", "data", "1860000000000000102"),
	newTopic("bigdata", "data", "1860000000000000102"),
	newTopic("logstash", "logs", "1860000000000000103"),
	newTopic("aws", "cloud", "1860000000000000104"),
	newTopic("streaming", "kafka", "1860000000000000101"),
}
