#!/usr/bin/env bash
# Installs what the test suite needs and the machine lacks: Kafka clients
# from Debian (kcat, kafka-python, confluent-kafka) and from npm (KafkaJS,
# for the compatibility suite); for the S3 tests versitygw (built with go
# install), aws cli and boto3 from Debian, pyarrow from PyPI; for the store
# sinks PostgreSQL from Debian, OpenSearch from Maven Central and dynalite
# (DynamoDB's API) from npm; Apache Kafka's jars from Maven Central for the
# referee tests; for the dashboard's browser tests Chromium from Debian, with
# CJK and emoji fonts so screenshots show Korean, Japanese and emoji.
# Binaries go to creek's cache outside the repository, so later runs start
# at once. Safe to run repeatedly.
set -euo pipefail

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/creek"
mkdir -p "$cache/bin"

# versitygw (the S3 server of the S3 tests) takes a minute or two to build:
# start it first, in the background, and wait for it at the end.
versitygw_version=v1.8.0
versitygw_pid=""
if ! [ -x "$cache/bin/versitygw" ]; then
  echo "test-deps: building versitygw $versitygw_version into $cache/bin (go install, in the background)"
  GOBIN="$cache/bin" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$versitygw_version" >"$cache/versitygw-build.log" 2>&1 &
  versitygw_pid=$!
fi

# OpenSearch for the Elasticsearch sink: the minimal distribution that
# Maven Central serves (no plugins, so plain HTTP), run on the JDK that is
# here. 56 MB: fetched in the background too.
opensearch_version=2.19.6
opensearch="$cache/opensearch-$opensearch_version"
opensearch_pid=""
if ! [ -x "$opensearch/bin/opensearch" ]; then
  echo "test-deps: downloading OpenSearch $opensearch_version (Maven Central, in the background)"
  (
    mvn -q dependency:copy -Dartifact="org.opensearch.distribution.integ-test-zip:opensearch:$opensearch_version:zip" \
      -DoutputDirectory="$cache" -Dmdep.overWriteReleases=true &&
      rm -rf "$opensearch.tmp" &&
      unzip -q "$cache/opensearch-$opensearch_version.zip" -d "$opensearch.tmp" &&
      mv "$opensearch.tmp/opensearch-$opensearch_version" "$opensearch" &&
      rm -rf "$opensearch.tmp" "$cache/opensearch-$opensearch_version.zip"
  ) >"$cache/opensearch-install.log" 2>&1 &
  opensearch_pid=$!
fi

# Apache Kafka, the referee (scripts/kafka.sh), fetched with Maven in the
# background once OpenSearch's download (also Maven) is done: one Maven at a
# time writes to the local repository.
kafka_pid=""
if command -v mvn >/dev/null && command -v java >/dev/null; then
  ( [ -z "$opensearch_pid" ] || while kill -0 "$opensearch_pid" 2>/dev/null; do sleep 1; done
    scripts/kafka.sh fetch ) >"$cache/kafka-fetch.log" 2>&1 &
  kafka_pid=$!
else
  echo "test-deps: no java or mvn here: the referee tests against Apache Kafka will skip"
fi

apt_packages=(kcat python3-kafka python3-confluent-kafka awscli python3-boto3 python3-venv unzip chromium fonts-noto-cjk fonts-noto-color-emoji)
# The PostgreSQL server; the tests start their own on a free port
# (internal/storetest), so Debian is told not to create and start a cluster.
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt_packages+=(postgresql)
  if ! [ -e /etc/postgresql-common/createcluster.d/creek.conf ]; then
    $sudo mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.d/creek.conf >/dev/null
  fi
fi

missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { $sudo apt-get update >/dev/null 2>&1 && $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# KafkaJS and its codec plugins, at the versions of package-lock.json.
if ! [ -d test/compat/node/node_modules/kafkajs ]; then
  echo "test-deps: installing KafkaJS (npm ci in test/compat/node)"
  (cd test/compat/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# dynalite, at the versions of internal/storetest/dynalite/package-lock.json.
dyn="$cache/dynalite"
if ! [ -x "$dyn/node_modules/.bin/dynalite" ] || ! cmp -s internal/storetest/dynalite/package-lock.json "$dyn/package-lock.json"; then
  echo "test-deps: installing dynalite (npm ci in $dyn)"
  mkdir -p "$dyn"
  cp internal/storetest/dynalite/package.json internal/storetest/dynalite/package-lock.json "$dyn/"
  (cd "$dyn" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# pyarrow reads back the S3 sink's Parquet objects; Debian has none.
if ! [ -x "$cache/venv/bin/python3" ] || ! "$cache/venv/bin/python3" -c 'import pyarrow' 2>/dev/null; then
  echo "test-deps: installing pyarrow into $cache/venv"
  rm -rf "$cache/venv"
  /usr/bin/python3 -m venv --system-site-packages "$cache/venv"
  "$cache/venv/bin/pip" install --quiet --disable-pip-version-check pyarrow==26.0.1
fi

if [ -n "$opensearch_pid" ]; then
  if ! wait "$opensearch_pid"; then
    echo "test-deps: installing OpenSearch failed (the Elasticsearch sink tests will skip):" >&2
    tail -20 "$cache/opensearch-install.log" >&2
    exit 1
  fi
fi

if [ -n "$kafka_pid" ] && ! wait "$kafka_pid"; then
  echo "test-deps: fetching Apache Kafka failed (the referee tests will skip):" >&2
  tail -20 "$cache/kafka-fetch.log" >&2
fi

if [ -n "$versitygw_pid" ]; then
  if ! wait "$versitygw_pid"; then
    echo "test-deps: building versitygw failed (the S3 tests will skip):" >&2
    tail -20 "$cache/versitygw-build.log" >&2
    exit 1
  fi
fi
