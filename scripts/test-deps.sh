#!/usr/bin/env bash
# Installs what the test suite needs and the machine lacks: Kafka clients
# from Debian (kcat, kafka-python, confluent-kafka) and from npm (KafkaJS,
# for the compatibility suite). Safe to run repeatedly.
set -euo pipefail

apt_packages=(kcat python3-kafka python3-confluent-kafka)

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
