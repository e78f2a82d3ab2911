#!/usr/bin/env bash
# Installs what the test suite needs and the machine lacks: Kafka clients
# from Debian (kcat, kafka-python, confluent-kafka) and from npm (KafkaJS,
# for the compatibility suite), and the stores the sinks write to:
# PostgreSQL from Debian, OpenSearch from Maven Central, dynalite (DynamoDB's
# API) from npm, cached outside the repo. Safe to run repeatedly.
set -euo pipefail

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/creek"
mkdir -p "$cache"

apt_packages=(kcat python3-kafka python3-confluent-kafka unzip)
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

# OpenSearch: the minimal distribution that Maven Central serves (no
# plugins, so no security plugin: plain HTTP), run on the JDK that is here.
opensearch_version=2.19.6
if ! [ -x "$cache/opensearch-$opensearch_version/bin/opensearch" ]; then
  echo "test-deps: installing OpenSearch $opensearch_version (Maven Central)"
  mvn -q dependency:copy -Dartifact="org.opensearch.distribution.integ-test-zip:opensearch:$opensearch_version:zip" \
    -DoutputDirectory="$cache" -Dmdep.overWriteReleases=true >/dev/null
  rm -rf "$cache/opensearch-$opensearch_version.tmp"
  unzip -q "$cache/opensearch-$opensearch_version.zip" -d "$cache/opensearch-$opensearch_version.tmp"
  mv "$cache/opensearch-$opensearch_version.tmp/opensearch-$opensearch_version" "$cache/opensearch-$opensearch_version"
  rm -rf "$cache/opensearch-$opensearch_version.tmp" "$cache/opensearch-$opensearch_version.zip"
fi
