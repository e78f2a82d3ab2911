#!/bin/bash
# scripts/bench-security.sh: what TLS and ACL checks cost. One broker with a
# PLAINTEXT, a SASL_SSL and a SASL_PLAINTEXT listener; creek bench produce and
# consume through each in turn, three rounds, the broker's CPU per GB measured.
# CREEK=path/to/creek (default ./creek), BENCH_DIR (default /tmp/creek-bench-security).
set -e
C=${CREEK:-./creek}; D=${BENCH_DIR:-/tmp/creek-bench-security}; rm -rf "$D"; mkdir -p "$D"
$C certs ca --dir $D/certs >/dev/null
$C certs broker broker --dir $D/certs --host 127.0.0.1 --host localhost >/dev/null
echo -n 'benchpass' > $D/admin.pass
$C users add admin --mechanism SCRAM-SHA-512 --password-file $D/admin.pass --data-dir $D/data
$C broker --data-dir $D/data --log-level warn \
  --listeners PLAINTEXT://127.0.0.1:19400,SASL_SSL://127.0.0.1:19401,SASL_PLAINTEXT://127.0.0.1:19402 \
  --tls-cert $D/certs/broker.crt --tls-key $D/certs/broker.key \
  --super-users 'User:admin;User:ANONYMOUS' 2>$D/broker.log &
BP=$!; sleep 2
echo -n 'benchpass' > $D/bench.pass
ADM="--brokers 127.0.0.1:19402 --sasl-mechanism SCRAM-SHA-512 --sasl-user admin --sasl-password-file $D/admin.pass"
$C users add bench --mechanism SCRAM-SHA-512 --password-file $D/bench.pass $ADM
$C acls add --allow-principal User:bench --operation All --topic '*' --group '*' $ADM
$C acls add --allow-principal User:bench --operation All --cluster $ADM
ACL="--sasl-mechanism SCRAM-SHA-512 --sasl-user bench --sasl-password-file $D/bench.pass"
SEC="--tls-ca $D/certs/ca.crt --sasl-mechanism SCRAM-SHA-512 --sasl-user admin --sasl-password-file $D/admin.pass"
for i in 1 2 3; do
  echo "run $i plaintext produce: $($C bench produce --brokers 127.0.0.1:19400 --topic p$i --records 500000 --broker-pid $BP --quiet 2>&1 | tail -1)"
  echo "run $i sasl_ssl  produce: $($C bench produce --brokers 127.0.0.1:19401 $SEC --topic s$i --records 500000 --broker-pid $BP --quiet 2>&1 | tail -1)"
  echo "run $i acl(sasl_plaintext, not super) produce: $($C bench produce --brokers 127.0.0.1:19402 $ACL --topic a$i --records 500000 --broker-pid $BP --quiet 2>&1 | tail -1)"
  echo "run $i plaintext consume: $($C bench consume --brokers 127.0.0.1:19400 --topic p$i --records 500000 --broker-pid $BP --quiet 2>&1 | tail -1)"
  echo "run $i sasl_ssl  consume: $($C bench consume --brokers 127.0.0.1:19401 $SEC --topic s$i --records 500000 --broker-pid $BP --quiet 2>&1 | tail -1)"
  echo "run $i acl(sasl_plaintext, not super) consume: $($C bench consume --brokers 127.0.0.1:19402 $ACL --topic a$i --records 500000 --broker-pid $BP --quiet 2>&1 | tail -1)"
done
kill $BP; wait $BP 2>/dev/null || true
