#!/bin/bash
# scripts/bench-fetch-sessions.sh: what incremental fetch sessions (KIP-227)
# save a consumer of many partitions. A broker with a topic of 1,000
# partitions, a producer of 200 tweets a second spread over them, and one
# consumer group member (creek consume into the file sink, franz-go, which
# fetches in sessions) reading them; for 30 s the broker's and the consumer's
# CPU are divided by the fetches the broker answered. Alternated rounds with
# sessions (max.incremental.fetch.session.cache.slots=1000, the default) and
# without (0, every fetch a full one).
# CREEK=path/to/creek (default ./creek), BENCH_DIR (default
# /tmp/creek-bench-sessions), ROUNDS (default 2), RATE (default 200).
set -e
C=${CREEK:-./creek}; D=${BENCH_DIR:-/tmp/creek-bench-sessions}; ROUNDS=${ROUNDS:-2}; RATE=${RATE:-200}
ticks() { awk '{print $14+$15}' /proc/$1/stat; } # user+system CPU, 10 ms ticks
fetches() { curl -s http://127.0.0.1:19411/metrics | awk '/^creek_broker_requests_total\{api="Fetch"/ {s+=$2} END {print s+0}'; }
round() {
  rm -rf "$D"; mkdir -p "$D"
  $C broker --listen 127.0.0.1:19410 --data-dir $D/data --log-level warn --http 127.0.0.1:19411 \
    --override max.incremental.fetch.session.cache.slots=$1 2>$D/broker.log &
  local bp=$!; sleep 2
  $C topics create quiet --brokers 127.0.0.1:19410 --partitions 1000 >/dev/null
  $C produce --brokers 127.0.0.1:19410 --topic quiet --from generate --rate $RATE >$D/producer.log 2>&1 &
  local pp=$!
  $C consume --brokers 127.0.0.1:19410 --topic quiet --group sessions --to file --path $D/out.jsonl >$D/consumer.log 2>&1 &
  local cp=$!
  sleep 10 # joined, and polling
  local b0 c0 f0 b1 c1 f1
  b0=$(ticks $bp); c0=$(ticks $cp); f0=$(fetches)
  sleep 30
  b1=$(ticks $bp); c1=$(ticks $cp); f1=$(fetches)
  local n=$((f1 - f0))
  echo "slots=$1: $n fetches in 30 s; CPU per fetch: broker $(( (b1 - b0) * 10000 / n )) µs, consumer $(( (c1 - c0) * 10000 / n )) µs"
  kill $pp $cp; wait $pp $cp 2>/dev/null || true
  kill $bp; wait $bp 2>/dev/null || true
}
echo "# $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); creek $(git rev-parse --short HEAD 2>/dev/null)"
for i in $(seq "$ROUNDS"); do
  round 1000
  round 0
done
