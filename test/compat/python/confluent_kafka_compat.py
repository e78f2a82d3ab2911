"""confluent-kafka-python with librdkafka (Debian's python3-confluent-kafka)
against creek: each scenario prints "RESULT <scenario> <pass|fail|n/a> <detail>"."""
import sys, time, traceback
from confluent_kafka import Producer, Consumer, TopicPartition, KafkaException, KafkaError
from confluent_kafka.admin import AdminClient, NewTopic, ConfigResource

bootstrap, topic = sys.argv[1], sys.argv[2]
group = topic + "-g"
PER_CODEC = 10
codecs = ["none", "gzip", "snappy", "lz4", "zstd"]


def result(name, fn):
    try:
        detail = fn() or ""
        status = "pass"
    except Exception as e:  # noqa: BLE001
        status, detail = "fail", "%s: %s" % (type(e).__name__, e)
        traceback.print_exc()
    print("RESULT %s %s %s" % (name, status, detail), flush=True)


_admin = AdminClient({"bootstrap.servers": bootstrap})


def admin():
    # One client for the whole run: futures fail if their client is destroyed.
    return _admin


def consume_group(n):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got, deadline = [], time.time() + 30
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        hs = dict(m.headers() or [])
        got.append((m.key().decode(), m.value().decode(), hs.get("codec", b"").decode()))
    c.commit(asynchronous=False)
    c.close()
    return got


def create():
    for f in admin().create_topics([NewTopic(topic, num_partitions=3, replication_factor=1,
                                             config={"retention.ms": "3600000"})]).values():
        f.result()


def produce():
    errors = []
    for c in codecs:
        p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "compression.type": c})
        for i in range(PER_CODEC):
            p.produce(topic, key=b"%s-%d" % (c.encode(), i), value=("value %s %d 안녕" % (c, i)).encode(),
                      headers=[("codec", c.encode())], on_delivery=lambda err, msg: err and errors.append(err))
        if p.flush(15) != 0:
            raise AssertionError("records still queued after 15 s")
    if errors:
        raise AssertionError("delivery errors: %s" % errors)


def consume():
    got = sorted(consume_group(len(codecs) * PER_CODEC))
    want = sorted(("%s-%d" % (c, i), "value %s %d 안녕" % (c, i), c) for c in codecs for i in range(PER_CODEC))
    if got != want:
        raise AssertionError("got %d records, not the %d produced" % (len(got), len(want)))


def resume():
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(topic, key=b"after-1", value=b"later")
    p.produce(topic, key=b"after-2", value=b"later")
    p.flush(10)
    got = sorted(r[0] for r in consume_group(2))
    if got != ["after-1", "after-2"]:
        raise AssertionError("after restart got %s" % got)


def offsets():
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group + "-offsets"})
    total = 0
    for p in range(3):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if lo != 0:
            raise AssertionError("low watermark %d" % lo)
        total += hi
    times = c.offsets_for_times([TopicPartition(topic, 0, 0)], timeout=10)
    c.close()
    if total != len(codecs) * PER_CODEC + 2 or times[0].offset != 0:
        raise AssertionError("high watermarks add up to %d, offset for time 0: %s" % (total, times))


def configs():
    for f in admin().describe_configs([ConfigResource("topic", topic)]).values():
        cfg = f.result()
        if cfg["retention.ms"].value == "3600000":
            return
    raise AssertionError("retention.ms not described")


def error_path():
    try:
        for f in admin().create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
            f.result()
    except KafkaException as e:
        if e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        raise
    raise AssertionError("creating an existing topic did not fail")


def transactions():
    txn_topic = topic + "-txn"
    for f in admin().create_topics([NewTopic(txn_topic, num_partitions=1, replication_factor=1)]).values():
        f.result()
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": topic + "-txn-id"})
    p.init_transactions(15)
    for values, commit in [(["c0", "c1", "c2"], True), (["a0", "a1"], False), (["end"], True)]:
        p.begin_transaction()
        for v in values:
            p.produce(txn_topic, key=v.encode(), value=v.encode())
        p.flush(10)  # the aborted records reach the log too
        if commit:
            p.commit_transaction(15)
        else:
            p.abort_transaction(15)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": topic + "-txn-g", "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed", "enable.auto.commit": False})
    c.subscribe([txn_topic])
    got, deadline = [], time.time() + 30
    while "end" not in got and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        got.append(m.value().decode())
    c.close()
    if got != ["c0", "c1", "c2", "end"]:
        raise AssertionError("read_committed read %s" % got)


for name, fn in [("create-topic", create), ("produce-codecs", produce), ("consume-group", consume),
                 ("resume", resume), ("list-offsets", offsets), ("describe-configs", configs),
                 ("error-path", error_path), ("transactions", transactions)]:
    result(name, fn)
print("RESULT consumer-protocol n/a librdkafka 2.0 (Debian) predates KIP-848 (librdkafka 2.4+ with group.protocol=consumer)", flush=True)
print("RESULT share-group n/a librdkafka 2.0 has no share group consumer", flush=True)
