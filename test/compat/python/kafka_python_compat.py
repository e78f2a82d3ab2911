"""kafka-python against creek: Debian's python3-kafka 2.0.2 and PyPI's 2.x
(with an idempotent and transactional producer from 2.1). Each scenario
prints "RESULT <scenario> <pass|fail|n/a> <detail>"; what a version lacks is
n/a, found by asking the library."""
import sys, time, traceback
import kafka
from kafka import KafkaProducer, KafkaConsumer, KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic, ConfigResource, ConfigResourceType
from kafka.errors import TopicAlreadyExistsError, OffsetOutOfRangeError
import kafka.codec

bootstrap, topic = sys.argv[1], sys.argv[2]
group = topic + "-g"
PER_CODEC = 10
available = {"none": True, "gzip": kafka.codec.has_gzip(), "snappy": kafka.codec.has_snappy(),
             "lz4": kafka.codec.has_lz4(), "zstd": kafka.codec.has_zstd()}
codecs = [c for c, ok in available.items() if ok]
# kafka-python 2.1 added the idempotent and transactional producer.
has_transactions = "transactional_id" in KafkaProducer.DEFAULT_CONFIG
idempotence = {"enable_idempotence": True} if has_transactions else {}


def result(name, fn):
    try:
        detail = fn() or ""
        status = "pass"
        if isinstance(detail, tuple):
            status, detail = detail
    except Exception as e:  # noqa: BLE001 - report any failure as the scenario's
        status, detail = "fail", "%s: %s" % (type(e).__name__, e)
        traceback.print_exc()
    print("RESULT %s %s %s" % (name, status, detail), flush=True)


def expected(cs):
    return sorted(("%s-%d" % (c, i), "value %s %d 안녕" % (c, i), c) for c in cs for i in range(PER_CODEC))


def consume_group(n):
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=15000)
    got = []
    for m in c:
        hs = dict(m.headers)
        got.append((m.key.decode(), m.value.decode(), hs.get("codec", b"").decode()))
        if len(got) >= n:
            break
    c.commit()
    c.close()
    return got


def create():
    KafkaAdminClient(bootstrap_servers=bootstrap).create_topics(
        [NewTopic(topic, 3, 1, topic_configs={"retention.ms": "3600000"})])


def produce():
    for c in codecs:
        p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=None if c == "none" else c,
                          **idempotence)
        for i in range(PER_CODEC):
            p.send(topic, key=b"%s-%d" % (c.encode(), i), value=("value %s %d 안녕" % (c, i)).encode(),
                   headers=[("codec", c.encode())])
        p.flush()
        p.close()
    missing = [c for c, ok in available.items() if not ok]
    notes = []
    if missing:
        notes.append("codecs %s (no %s library in this Python)" % (",".join(codecs), ",".join(missing)))
    if not idempotence:
        notes.append("idempotence not offered by kafka-python %s" % kafka.__version__)
    return "; ".join(notes)


def consume():
    got = sorted(consume_group(len(codecs) * PER_CODEC))
    if got != expected(codecs):
        raise AssertionError("got %d records, not the %d produced" % (len(got), len(codecs) * PER_CODEC))


def resume():
    p = KafkaProducer(bootstrap_servers=bootstrap)
    p.send(topic, key=b"after-1", value=b"later")
    p.send(topic, key=b"after-2", value=b"later")
    p.flush()
    got = sorted(r[0] for r in consume_group(2))
    if got != ["after-1", "after-2"]:
        raise AssertionError("after restart got %s" % got)


def offsets():
    c = KafkaConsumer(bootstrap_servers=bootstrap)
    tps = [TopicPartition(topic, i) for i in range(3)]
    end = sum(c.end_offsets(tps).values())
    begin = sum(c.beginning_offsets(tps).values())
    times = c.offsets_for_times({tps[0]: 0})
    c.close()
    if end != len(codecs) * PER_CODEC + 2 or begin != 0 or times[tps[0]].offset != 0:
        raise AssertionError("end %d begin %d times %s" % (end, begin, times))


def configs():
    res = KafkaAdminClient(bootstrap_servers=bootstrap).describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)])
    for entry in res[0].resources[0][4]:
        if entry[0] == "retention.ms" and entry[1] == "3600000":
            return
    raise AssertionError("retention.ms not described")


def error_path():
    try:
        KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic(topic, 3, 1)])
    except TopicAlreadyExistsError:
        pass
    else:
        raise AssertionError("creating an existing topic did not fail")
    c = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="none", consumer_timeout_ms=5000)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek(tp, 1000000)
    try:
        c.poll(timeout_ms=5000)
        for _ in range(5):
            c.poll(timeout_ms=1000)
    except OffsetOutOfRangeError:
        return
    raise AssertionError("fetching past the end did not raise OffsetOutOfRangeError")


def transactions():
    txn_topic = topic + "-txn"
    KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic(txn_topic, 1, 1)])
    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=topic + "-txn-id")
    p.init_transactions()
    for values, commit in [(["c0", "c1", "c2"], True), (["a0", "a1"], False), (["end"], True)]:
        p.begin_transaction()
        for v in values:
            p.send(txn_topic, key=v.encode(), value=v.encode())
        p.flush()  # the aborted records reach the log too
        if commit:
            p.commit_transaction()
        else:
            p.abort_transaction()
    p.close()
    c = KafkaConsumer(txn_topic, bootstrap_servers=bootstrap, group_id=topic + "-txn-g", auto_offset_reset="earliest",
                      isolation_level="read_committed", enable_auto_commit=False, consumer_timeout_ms=15000)
    got = []
    for m in c:
        got.append(m.value.decode())
        if m.value == b"end":
            break
    c.close()
    if got != ["c0", "c1", "c2", "end"]:
        raise AssertionError("read_committed read %s" % got)


scenarios = [("create-topic", create), ("produce-codecs", produce), ("consume-group", consume),
             ("resume", resume), ("list-offsets", offsets), ("describe-configs", configs),
             ("error-path", error_path)]
if has_transactions:
    scenarios.append(("transactions", transactions))
else:
    print("RESULT transactions n/a kafka-python %s has no transactional producer" % kafka.__version__, flush=True)
for name, fn in scenarios:
    result(name, fn)
print("RESULT consumer-protocol n/a kafka-python %s speaks only the classic group protocol" % kafka.__version__, flush=True)
print("RESULT share-group n/a kafka-python %s has no share group consumer" % kafka.__version__, flush=True)
