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


# Security: the broker's SASL_SSL and SASL_PLAINTEXT listeners, the test CA
# and a user with ACLs on compat-sec-* only (CREEK_COMPAT_*, set by the Go suite).
env = __import__("os").environ


def sec_conf(listener, mechanism, password=None):
    conf = {"bootstrap_servers": env["CREEK_COMPAT_" + listener], "security_protocol": listener,
            "sasl_mechanism": mechanism, "sasl_plain_username": env["CREEK_COMPAT_USER"],
            "sasl_plain_password": password or env["CREEK_COMPAT_PASSWORD"]}
    if listener == "SASL_SSL":
        conf["ssl_cafile"] = env["CREEK_COMPAT_CA"]
    return conf


def sec_round_trip(listener, mechanism, scenario):
    t = "compat-sec-" + topic[len("compat-"):] + "-" + scenario
    values = ["%s-%d" % (scenario, i) for i in range(3)]
    p = KafkaProducer(**sec_conf(listener, mechanism))
    for v in values:
        p.send(t, v.encode()).get(timeout=15)
    p.close()
    c = KafkaConsumer(t, group_id=t, auto_offset_reset="earliest", consumer_timeout_ms=15000,
                      **sec_conf(listener, mechanism))
    got = []
    for m in c:
        got.append(m.value.decode())
        if len(got) == len(values):
            break
    c.commit()
    c.close()
    if got != values:
        raise AssertionError("read %s, want %s" % (got, values))


def bad_password():
    # 2.1+ raises SaslAuthenticationFailedError on the connection but hands
    # user code IncompatibleBrokerVersion (its version probe failed), and
    # logs the SASL error; 2.0 logs in with SaslHandshake v0, where Kafka
    # (and creek) close the connection on a failed login, so user code gets
    # NoBrokersAvailable. This checks the refusal reached the client's log.
    import logging
    seen = []
    handler = logging.Handler()
    handler.emit = lambda r: seen.append(r.getMessage())
    logging.getLogger("kafka").addHandler(handler)
    try:
        KafkaAdminClient(**sec_conf("SASL_SSL", "SCRAM-SHA-512", "wrong")).close()
    except kafka.errors.KafkaError as e:
        if not any("Authentication failed" in m or "<authenticating>" in m for m in seen):
            raise AssertionError("%s, and no failed login in kafka-python's log: %s" % (type(e).__name__, seen[-5:]))
        return "refused, but kafka-python hands user code %s: the login failure is only in its log" % type(e).__name__
    finally:
        logging.getLogger("kafka").removeHandler(handler)
    raise AssertionError("a wrong password was accepted")


def acl_denied():
    p = KafkaProducer(max_block_ms=5000, **sec_conf("SASL_SSL", "SCRAM-SHA-512"))
    try:
        p.send(env["CREEK_COMPAT_DENIED"], b"x").get(timeout=5)
    except kafka.errors.TopicAuthorizationFailedError:
        return
    except kafka.errors.KafkaTimeoutError:
        if has_transactions:
            raise
        return ("n/a", "kafka-python %s's producer waits out max_block_ms (KafkaTimeoutError) instead of raising "
                "TopicAuthorizationFailedError" % kafka.__version__)
    finally:
        p.close()
    raise AssertionError("producing to a denied topic succeeded")


scenarios += [("sasl-scram-tls", lambda: sec_round_trip("SASL_SSL", "SCRAM-SHA-512", "sasl-scram-tls")),
              ("sasl-plain", lambda: sec_round_trip("SASL_PLAINTEXT", "PLAIN", "sasl-plain")),
              ("bad-password", bad_password), ("acl-denied", acl_denied)]
for name, fn in scenarios:
    result(name, fn)
print("RESULT consumer-protocol n/a kafka-python %s speaks only the classic group protocol" % kafka.__version__, flush=True)
print("RESULT share-group n/a kafka-python %s has no share group consumer" % kafka.__version__, flush=True)
