#!/usr/bin/env bash
# Apache Kafka as the referee: fetch a release's jars from Maven Central into
# a cache outside the repository, and start or stop KRaft brokers on free
# loopback ports. Used by the referee tests (test/referee) and benchmarks.
#
#   scripts/kafka.sh fetch              download the jars (once); prints the folder
#   scripts/kafka.sh libs               prints the folder if the jars are there, else fails
#   scripts/kafka.sh start DIR [N]      format and start N brokers (1 or 3) under DIR;
#                                       prints bootstrap=HOST:PORT,... when they serve
#   scripts/kafka.sh stop DIR           stop the brokers started under DIR
#   scripts/kafka.sh node DIR I         start node I under DIR again (after kill -9)
#                                       and wait until it listens
#   scripts/kafka.sh run CLASS ARGS...  run one of Kafka's tools by class name
#
# With 3 brokers every topic defaults to replication factor 3 and
# min.insync.replicas 2. Line I of DIR/pids is node I's process id.
# KAFKA_VERSION picks the release (default below), KAFKA_CACHE the cache
# folder, KAFKA_JVM_FLAGS the brokers' JVM flags (default: a 512 MiB heap),
# KAFKA_RUN_OPTS extra JVM options for run. With KAFKA_OWNER_PID set, start
# also stops the brokers once that process is gone (a test binary killed
# by Ctrl-C or a timeout runs none of its cleanup).
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
# Maven Central lags with the FileStream connectors; they only need Connect's API.
CONNECT_FILE_VERSION="${CONNECT_FILE_VERSION:-4.3.1}"
CACHE="${KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/creek/kafka-$KAFKA_VERSION}"
LIBS="$CACHE/libs"

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
	if [ -f "$LIBS/.complete" ]; then
		echo "$LIBS"
		return
	fi
	command -v mvn >/dev/null || die "mvn (Maven) is needed to fetch Kafka's jars from Maven Central"
	command -v java >/dev/null || die "java (a JDK 17 or later) is needed to run Kafka"
	mkdir -p "$CACHE"
	local pom="$CACHE/pom.xml"
	cat >"$pom" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.creek</groupId>
  <artifactId>kafka-referee</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-file</artifactId><version>$CONNECT_FILE_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-streams</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
EOF
	echo "kafka.sh: fetching Apache Kafka $KAFKA_VERSION's jars from Maven Central into $LIBS" >&2
	rm -rf "$LIBS.tmp"
	mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$LIBS.tmp" >&2 ||
		die "Maven could not fetch Kafka $KAFKA_VERSION (see above)"
	# Connect and the tools each bring a logging binding; keep one.
	rm -f "$LIBS.tmp"/slf4j-reload4j-*.jar "$LIBS.tmp"/log4j-slf4j*-impl-*.jar
	touch "$LIBS.tmp/.complete"
	rm -rf "$LIBS"
	mv "$LIBS.tmp" "$LIBS"
	echo "$LIBS"
}

# free_port prints a TCP port nothing listens on now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# JVM flags for Kafka's short-lived tools (formatting, the readiness probe):
# the quick compiler only, which starts them in about half the time.
QUICK_JVM=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto)

# random_uuid prints a Kafka Uuid (base64url of 16 random bytes, as
# StorageTool random-uuid prints, not starting with '-') without a JVM.
random_uuid() {
	python3 -c 'import base64, os
while True:
    u = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    if not u.startswith("-"):
        print(u)
        break'
}

# run_node starts node I under DIR from its server.properties and writes its
# process id to line I of DIR/pids.
run_node() {
	local dir="$1" i="$2" node="$1/node-$2"
	# shellcheck disable=SC2086 # KAFKA_JVM_FLAGS is a list of flags
	nohup java ${KAFKA_JVM_FLAGS:--Xms128m -Xmx512m -XX:+UseSerialGC} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
		-cp "$LIBS/*" kafka.Kafka "$node/server.properties" >>"$node/kafka.log" 2>&1 &
	local pid=$! lines=()
	[ -f "$dir/pids" ] && mapfile -t lines <"$dir/pids"
	while [ ${#lines[@]} -lt "$i" ]; do lines+=(""); done
	lines[$((i - 1))]="$pid"
	printf '%s\n' "${lines[@]}" >"$dir/pids"
}

# wait_ready waits until every broker under DIR listens and the cluster's
# metadata lists all N of them.
wait_ready() {
	local dir="$1" n="$2" bootstrap hostports
	bootstrap="$(cat "$dir/bootstrap")"
	local deadline=$((SECONDS + 120))
	IFS=, read -ra hostports <<<"$bootstrap"
	# A port probe costs nothing; the JVM probe below costs seconds a try.
	for hp in "${hostports[@]}"; do
		until (exec 3<>"/dev/tcp/${hp%:*}/${hp#*:}") 2>/dev/null; do
			[ $SECONDS -lt $deadline ] || return 1
			sleep 0.5
		done
	done
	until java "${QUICK_JVM[@]}" -cp "$LIBS/*" org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$bootstrap" 2>/dev/null |
		grep -c '^127.0.0.1' | grep -qx "$n"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 1
	done
}

start() {
	local dir="$1" n="${2:-1}"
	[ "$n" = 1 ] || [ "$n" = 3 ] || die "start: 1 or 3 brokers, not $n"
	fetch >/dev/null
	mkdir -p "$dir"
	local ports=() cports=() voters="" bootstrap=""
	for i in $(seq 1 "$n"); do
		ports+=("$(free_port)")
		cports+=("$(free_port)")
	done
	for i in $(seq 1 "$n"); do
		voters+="${voters:+,}$i@127.0.0.1:${cports[$((i - 1))]}"
		bootstrap+="${bootstrap:+,}127.0.0.1:${ports[$((i - 1))]}"
	done
	local rf=1 isr=1
	if [ "$n" = 3 ]; then rf=3 isr=2; fi
	local cluster formats=()
	cluster="$(random_uuid)"
	: >"$dir/pids"
	echo "$bootstrap" >"$dir/bootstrap"
	for i in $(seq 1 "$n"); do
		local node="$dir/node-$i"
		mkdir -p "$node"
		cat >"$node/server.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${ports[$((i - 1))]},CONTROLLER://127.0.0.1:${cports[$((i - 1))]}
advertised.listeners=PLAINTEXT://127.0.0.1:${ports[$((i - 1))]}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$node/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
EOF
		# Formatting is a JVM start each: the nodes are formatted at once.
		java "${QUICK_JVM[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format -t "$cluster" -c "$node/server.properties" >"$node/format.log" 2>&1 &
		formats+=("$!")
	done
	for i in $(seq 1 "$n"); do
		wait "${formats[$((i - 1))]}" || die "formatting node $i failed: $(tail -3 "$dir/node-$i/format.log")"
	done
	for i in $(seq 1 "$n"); do
		run_node "$dir" "$i"
	done
	if ! wait_ready "$dir" "$n"; then
		stop "$dir"
		die "Kafka did not start within 120s: $(tail -5 "$dir/node-1/kafka.log")"
	fi
	if [ -n "${KAFKA_OWNER_PID:-}" ]; then
		watch_owner "$dir" "$KAFKA_OWNER_PID" </dev/null >/dev/null 2>&1 &
		disown
	fi
	echo "bootstrap=$bootstrap"
}

# watch_owner stops the brokers under DIR when process PID ends, unless
# they were stopped before.
watch_owner() {
	local dir="$1" pid="$2"
	while kill -0 "$pid" 2>/dev/null && [ -f "$dir/pids" ]; do sleep 2; done
	stop "$dir"
}

# restart_node starts node I under DIR again (after it stopped or was
# killed) and waits until it listens; the caller checks that it rejoined
# (its replicas back in sync).
restart_node() {
	local dir="$1" i="$2" hp
	[ -f "$dir/node-$i/server.properties" ] || die "node: no node $i under $dir"
	hp="$(cut -d, -f"$i" "$dir/bootstrap")"
	run_node "$dir" "$i"
	local deadline=$((SECONDS + 120))
	until (exec 3<>"/dev/tcp/${hp%:*}/${hp#*:}") 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || die "node $i did not listen within 120s: $(tail -5 "$dir/node-$i/kafka.log")"
		sleep 0.5
	done
	echo "bootstrap=$(cat "$dir/bootstrap")"
}

stop() {
	local dir="$1"
	[ -f "$dir/pids" ] || return 0
	while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$dir/pids"
	for _ in $(seq 1 50); do
		local alive=0
		while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$dir/pids"
		[ $alive = 0 ] && break
		sleep 0.2
	done
	while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$dir/pids"
	rm -f "$dir/pids"
}

case "${1:-}" in
fetch) fetch ;;
libs) [ -f "$LIBS/.complete" ] || die "Kafka $KAFKA_VERSION's jars are not in $LIBS (scripts/kafka.sh fetch, or make test-deps)"; echo "$LIBS" ;;
start) shift; start "$@" ;;
stop) shift; stop "$@" ;;
node) shift; restart_node "$@" ;;
run)
	shift
	fetch >/dev/null
	# KAFKA_RUN_OPTS: extra JVM options (the tests start short-lived tools
	# with -XX:TieredStopAtLevel=1, a third less CPU to start each).
	# shellcheck disable=SC2086
	exec java ${KAFKA_RUN_OPTS:-} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$LIBS/*" "$@"
	;;
*) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
