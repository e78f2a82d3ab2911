package generate

import "fmt"

// The material synthetic tweets are made of.

type author struct {
	n      int // user id is 5000+n
	handle string
	name   string
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
		out = append(out, author{n: i + 1, handle: h.handle, name: h.name})
	}
	// A long tail of plain accounts, as on the real stream.
	for i := len(handles) + 1; i <= 400; i++ {
		out = append(out, author{n: i, handle: fmt.Sprintf("user%d", 5000+i), name: fmt.Sprintf("User %d", 5000+i)})
	}
	return out
}()

var korean = []string{
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
}

var english = []string{
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
}

var japanese = []string{
	"カフカでツイートを集めています",
	"ストリーム処理の勉強中",
	"コンシューマーグループ便利すぎる",
}

type topic struct {
	tag    string // hashtag in the text
	rule   string // tag of the matching rule
	ruleID string
}

var topics = []topic{
	{"kafka", "kafka", "1860000000000000101"},
	{"카프카", "kafka", "1860000000000000101"},
	{"dataengineering", "data", "1860000000000000102"},
	{"데이터", "data", "1860000000000000102"},
	{"bigdata", "data", "1860000000000000102"},
	{"logstash", "logs", "1860000000000000103"},
	{"aws", "cloud", "1860000000000000104"},
	{"streaming", "kafka", "1860000000000000101"},
}
