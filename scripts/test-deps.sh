#!/usr/bin/env bash
# Installs what the test suite needs and the machine lacks: Kafka clients
# from Debian (kcat, kafka-python, confluent-kafka) and from npm (KafkaJS,
# for the compatibility suite); for the S3 tests versitygw (built with go
# install), aws cli and boto3 from Debian, pyarrow from PyPI; for the
# dashboard's browser tests Chromium from Debian, with CJK and emoji fonts
# so screenshots show Korean, Japanese and emoji. Binaries go to
# creek's cache outside the repository, so later runs start at once. Safe to
# run repeatedly.
set -euo pipefail

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

apt_packages=(kcat python3-kafka python3-confluent-kafka awscli python3-boto3 python3-venv chromium fonts-noto-cjk fonts-noto-color-emoji)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { $sudo apt-get update >/dev/null 2>&1 && $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# KafkaJS and its codec plugins, at the versions of package-lock.json.
if ! [ -d test/compat/node/node_modules/kafkajs ]; then
  echo "test-deps: installing KafkaJS (npm ci in test/compat/node)"
  (cd test/compat/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# pyarrow reads back the S3 sink's Parquet objects; Debian has none.
if ! [ -x "$cache/venv/bin/python3" ] || ! "$cache/venv/bin/python3" -c 'import pyarrow' 2>/dev/null; then
  echo "test-deps: installing pyarrow into $cache/venv"
  rm -rf "$cache/venv"
  /usr/bin/python3 -m venv --system-site-packages "$cache/venv"
  "$cache/venv/bin/pip" install --quiet --disable-pip-version-check pyarrow==26.0.1
fi

if [ -n "$versitygw_pid" ]; then
  if ! wait "$versitygw_pid"; then
    echo "test-deps: building versitygw failed (the S3 tests will skip):" >&2
    tail -20 "$cache/versitygw-build.log" >&2
    exit 1
  fi
fi
