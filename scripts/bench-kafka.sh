#!/usr/bin/env bash
# creek beside Apache Kafka on this machine, same clients, same run: a creek
# broker (--fsync acks, its default; and --fsync always), and a single-node
# Apache Kafka from scripts/kafka.sh with the JVM flags of Kafka's own start
# script, its topics at Kafka's defaults (no fsync before acknowledging) or
# with flush.messages=1 (fsync after every append, creek's durability).
#
#   scripts/bench-kafka.sh [ROUNDS]      (default 2)
#
# Each round runs every line against every broker in turn, the order
# alternating from round to round so that the noise of a shared machine
# hits all of them. The lines: creek bench produce and Kafka's
# kafka-producer-perf-test (ProducerPerformance), acks=all with 1 KB records
# and acks=1 with 100 B records; creek bench consume and
# kafka-consumer-perf-test (ConsumerPerformance) of the 1 KB topic. Each run
# prints the client's own summary line and the broker's CPU time from
# /proc/PID/stat (user + system) per GB of record values. At the end: each
# broker's peak resident memory (VmHWM), and the time from starting a
# broker that holds 1,000 partitions until its metadata shows a leader for
# every one of them.
#
# RECORDS_1K and RECORDS_100 set the records of a run (1,000,000 and
# 5,000,000); the output is also kept in $OUT (default /tmp/bench-kafka.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-2}"
n1k="${RECORDS_1K:-1000000}"
n100="${RECORDS_100:-5000000}"
out="${OUT:-/tmp/bench-kafka.txt}"
work="$(mktemp -d /tmp/bench-kafka.XXXXXX)"
tck="$(getconf CLK_TCK)"
creek="$work/bin/creek"
go build -o "$creek" ./cmd/creek
: >"$out"

say() { echo "$*" | tee -a "$out"; }

# Kafka's bin/kafka-server-start.sh and kafka-run-class.sh flags.
export KAFKA_JVM_FLAGS="-Xms1G -Xmx1G -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# ticks PID: the process's user and system CPU ticks so far.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

declare -A addr pid
pids_started=()
cleanup() {
	for p in "${pids_started[@]}"; do kill "$p" 2>/dev/null || true; done
	scripts/kafka.sh stop "$work/kafka" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# start_creek NAME ARGS...: a creek broker on a free port.
start_creek() {
	local name="$1"
	shift
	local port
	port="$(free_port)"
	"$creek" broker --listen "127.0.0.1:$port" --data-dir "$work/$name" --log-level warn "$@" >"$work/$name.log" 2>&1 &
	pid[$name]=$!
	pids_started+=("$!")
	addr[$name]="127.0.0.1:$port"
	until "$creek" topics list --brokers "${addr[$name]}" >/dev/null 2>&1; do sleep 0.1; done
}

# scripts/kafka.sh starts Kafka with group.initial.rebalance.delay.ms=0, as
# Kafka's own config/server.properties does; creek's brokers get the same,
# or kafka-consumer-perf-test's group join would wait 3 s on creek alone.
start_creek creek --override group.initial.rebalance.delay.ms=0
start_creek creek-always --fsync always --override group.initial.rebalance.delay.ms=0
bootstrap="$(scripts/kafka.sh start "$work/kafka" 1 | sed -n 's/^bootstrap=//p')"
addr[kafka]="$bootstrap"
addr[kafka-flush]="$bootstrap"
pid[kafka]="$(head -1 "$work/kafka/pids")"
pid[kafka-flush]="${pid[kafka]}"

say "# $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); creek $(git rev-parse --short HEAD), Apache Kafka ${KAFKA_VERSION:-4.4.0}"
say "# brokers: creek (--fsync acks), creek-always (--fsync always), kafka (defaults), kafka-flush (topics with flush.messages=1)"

# topic NAME BROKER: creates a topic of 3 partitions (flush.messages=1 on kafka-flush).
topic() {
	local cfg=()
	[ "$2" = kafka-flush ] && cfg=(--config flush.messages=1)
	"$creek" topics create "$1" --brokers "${addr[$2]}" --partitions 3 "${cfg[@]}" >/dev/null
}

# measure LABEL BROKER BYTES CMD...: runs CMD, prints its last line and the
# broker's CPU per GB, and how much of that CPU was the kernel's (system
# time: the writes, fsyncs, socket reads and sendfile both brokers make).
measure() {
	local label="$1" b="$2" bytes="$3"
	shift 3
	local u0 s0 u1 s1 line
	read -r u0 s0 < <(ticks "${pid[$b]}")
	line="$("$@" 2>&1 | grep -v '^\[' | tail -1)"
	read -r u1 s1 < <(ticks "${pid[$b]}")
	say "$(awk -v l="$label" -v b="$b" -v t="$((u1 - u0 + s1 - s0))" -v st="$((s1 - s0))" -v hz="$tck" -v by="$bytes" -v line="$line" \
		'BEGIN { s = t / hz; gb = by / 1e9; printf "%-22s %-13s broker CPU %6.2f s = %5.2f s/GB (system %5.2f s/GB) | %s", l, b, s, s / gb, st / hz / gb, line }')"
}

perf_producer() { # BROKER TOPIC RECORDS SIZE ACKS
	scripts/kafka.sh run org.apache.kafka.tools.ProducerPerformance --topic "$2" --num-records "$3" --record-size "$4" \
		--throughput -1 --producer-props "bootstrap.servers=${addr[$1]}" "acks=$5"
}
perf_consumer() { # BROKER TOPIC RECORDS
	scripts/kafka.sh run org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "${addr[$1]}" --topic "$2" \
		--messages "$3" --timeout 120000 --hide-header
}

# Warm-up, not measured: Kafka's JIT compiles its hot paths, and each
# broker's files and memory are touched once.
for b in creek creek-always kafka; do
	"$creek" bench produce --quiet --brokers "${addr[$b]}" --topic warm-up --records 300000 --record-size 1024 --acks 1 >/dev/null
	"$creek" bench consume --quiet --brokers "${addr[$b]}" --topic warm-up >/dev/null
	"$creek" topics delete warm-up --brokers "${addr[$b]}" >/dev/null
done

order=(creek kafka kafka-flush creek-always)
for r in $(seq 1 "$rounds"); do
	say ""
	say "## round $r of $rounds (load $(cut -d' ' -f1-3 /proc/loadavg))"
	for b in "${order[@]}"; do
		[ "$b" = creek-always ] && continue # equal durability for acks=1 only, below
		t="r$r-all1k-bench"
		topic "$t" "$b"
		measure "bench acks=all 1KB" "$b" "$((n1k * 1024))" "$creek" bench produce --quiet --brokers "${addr[$b]}" --topic "$t" --records "$n1k" --record-size 1024 --acks all
		measure "bench consume 1KB" "$b" "$((n1k * 1024))" "$creek" bench consume --quiet --brokers "${addr[$b]}" --topic "$t" --records "$n1k"
		measure "perf-consumer 1KB" "$b" "$((n1k * 1024))" perf_consumer "$b" "$t" "$n1k"
		"$creek" topics delete "$t" --brokers "${addr[$b]}" >/dev/null
		t="r$r-all1k-perf"
		topic "$t" "$b"
		measure "perf acks=all 1KB" "$b" "$((n1k * 1024))" perf_producer "$b" "$t" "$n1k" 1024 all
		"$creek" topics delete "$t" --brokers "${addr[$b]}" >/dev/null
	done
	for b in "${order[@]}"; do
		t="r$r-one100-bench"
		topic "$t" "$b"
		measure "bench acks=1 100B" "$b" "$((n100 * 100))" "$creek" bench produce --quiet --brokers "${addr[$b]}" --topic "$t" --records "$n100" --record-size 100 --acks 1
		"$creek" topics delete "$t" --brokers "${addr[$b]}" >/dev/null
		t="r$r-one100-perf"
		topic "$t" "$b"
		measure "perf acks=1 100B" "$b" "$((n100 * 100))" perf_producer "$b" "$t" "$n100" 100 1
		"$creek" topics delete "$t" --brokers "${addr[$b]}" >/dev/null
	done
	# The next round starts with another broker.
	order=("${order[@]:1}" "${order[0]}")
done

say ""
say "## peak resident memory (VmHWM) over all the runs"
say "creek $(peak_rss_mib "${pid[creek]}") MiB, creek-always $(peak_rss_mib "${pid[creek-always]}") MiB, kafka (both topic kinds) $(peak_rss_mib "${pid[kafka]}") MiB"

# Startup: a broker holding 1,000 partitions, stopped cleanly and started
# again, until Metadata shows a leader for each.
leaders() { "$creek" topics describe p1000 --brokers "$1" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ && $2 >= 0 { n++ } END { print n + 0 }'; }
wait_leaders() {
	until [ "$(leaders "$1")" = 1000 ]; do sleep 0.05; done
}
say ""
say "## startup with 1,000 partitions (clean stop, start, until every partition has a leader)"
"$creek" topics create p1000 --brokers "${addr[creek]}" --partitions 1000 >/dev/null
"$creek" topics create p1000 --brokers "${addr[kafka]}" --partitions 1000 >/dev/null
"$creek" bench produce --quiet --brokers "${addr[creek]}" --topic p1000 --records 100000 --record-size 1024 --acks 1 >/dev/null
"$creek" bench produce --quiet --brokers "${addr[kafka]}" --topic p1000 --records 100000 --record-size 1024 --acks 1 >/dev/null
wait_leaders "${addr[kafka]}"
for i in 1 2; do
	kill "${pid[creek]}"
	while kill -0 "${pid[creek]}" 2>/dev/null; do sleep 0.05; done
	t0="$(date +%s.%N)"
	"$creek" broker --listen "${addr[creek]}" --data-dir "$work/creek" --log-level warn >>"$work/creek.log" 2>&1 &
	pid[creek]=$!
	pids_started+=("$!")
	wait_leaders "${addr[creek]}"
	say "creek start $i: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s, peak memory $(peak_rss_mib "${pid[creek]}") MiB"
	scripts/kafka.sh stop "$work/kafka"
	t0="$(date +%s.%N)"
	scripts/kafka.sh node "$work/kafka" 1 >/dev/null
	pid[kafka]="$(head -1 "$work/kafka/pids")"
	wait_leaders "${addr[kafka]}"
	say "kafka start $i: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s, peak memory $(peak_rss_mib "${pid[kafka]}") MiB"
done
say "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
