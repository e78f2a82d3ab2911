"""confluent-kafka-python with librdkafka against creek: Debian's
python3-confluent-kafka 1.7 (librdkafka 2.0) and PyPI's 2.x (librdkafka
bundled, 2.4+ with KIP-848's consumer protocol, newer with share groups).
Each scenario prints "RESULT <scenario> <pass|fail|n/a> <detail>"; what a
version lacks is n/a, found by asking the library."""
import sys, time, traceback
import confluent_kafka
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


def poll_values(c, done, timeout=30, read=lambda m: m.value().decode()):
    """Polls c until done(got) or timeout seconds pass; got holds read(m) of each record."""
    got, deadline = [], time.time() + timeout
    while not done(got) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        got.append(read(m))
    return got


def consume_group(n):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got = poll_values(c, lambda got: len(got) >= n,
                      read=lambda m: (m.key().decode(), m.value().decode(), dict(m.headers() or []).get("codec", b"").decode()))
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
    got = poll_values(c, lambda got: "end" in got)
    c.close()
    if got != ["c0", "c1", "c2", "end"]:
        raise AssertionError("read_committed read %s" % got)


def produce_values(t, first, n):
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(first, first + n):
        p.produce(t, key=str(i).encode(), value=str(i).encode())
    if p.flush(15) != 0:
        raise AssertionError("records still queued after 15 s")


def new_topic(t, partitions):
    for f in admin().create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1)]).values():
        f.result()


def consumer_protocol():
    """Two members of a KIP-848 group share the 4 partitions, read 40 records
    once between them and commit; the group is described as a
    consumer-protocol group of two; a new member reads only the 4 records
    produced after."""
    t, g = topic + "-848", topic + "-848-g"
    new_topic(t, 4)

    def member():
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": g, "group.protocol": "consumer",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([t])
        return c
    members = [member(), member()]

    def poll_all(on_message):
        for i, c in enumerate(members):
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            on_message(i, m)
    # The records come once both members have their partitions, so that
    # none moves while they are read.
    deadline = time.time() + 60
    while True:
        owned = [set((p.topic, p.partition) for p in c.assignment()) for c in members]
        if all(owned) and len(owned[0] | owned[1]) == 4 and not owned[0] & owned[1]:
            break
        if time.time() > deadline:
            raise AssertionError("the members own %s after 60 s, not 4 partitions between them" % owned)
        poll_all(lambda i, m: None)
    produce_values(t, 0, 40)
    seen, by_member, deadline = {}, [0, 0], time.time() + 60

    def count(i, m):
        seen[m.value().decode()] = seen.get(m.value().decode(), 0) + 1
        by_member[i] += 1
    while len(seen) < 40 and time.time() < deadline:
        poll_all(count)
    if len(seen) != 40 or any(n != 1 for n in seen.values()):
        raise AssertionError("the two members read %d distinct records, %d in all" % (len(seen), sum(seen.values())))
    desc = admin().describe_consumer_groups([g])[g].result()
    if len(desc.members) != 2 or desc.type != confluent_kafka.ConsumerGroupType.CONSUMER:
        raise AssertionError("described as %s with %d members" % (desc.type, len(desc.members)))
    for c in members:
        c.commit(asynchronous=False)
        c.close()
    produce_values(t, 40, 4)
    c = member()
    got = poll_values(c, lambda got: len(got) >= 4)
    c.close()
    if sorted(got) != ["40", "41", "42", "43"]:
        raise AssertionError("the new member read %s, want only the 4 new records" % got)
    if 0 in by_member:
        raise AssertionError("one member read all 40 records")


def share_group():
    """Two share group members take each of 40 records exactly once."""
    t, g = topic + "-share", topic + "-share-g"
    new_topic(t, 2)
    produce_values(t, 0, 40)
    # A share group starts at the latest records unless its config says otherwise.
    res = ConfigResource(confluent_kafka.admin.ResourceType.GROUP, g,
                         incremental_configs=[confluent_kafka.admin.ConfigEntry(
                             "share.auto.offset.reset", "earliest",
                             incremental_operation=confluent_kafka.admin.AlterConfigOpType.SET)])
    for f in admin().incremental_alter_configs([res]).values():
        f.result()
    members = [confluent_kafka.ShareConsumer({"bootstrap.servers": bootstrap, "group.id": g}) for _ in range(2)]
    for c in members:
        c.subscribe([t])
    taken, deadline = {}, time.time() + 60
    while len(taken) < 40 and time.time() < deadline:
        for c in members:
            for m in c.poll(0.3):
                if m.error():
                    raise KafkaException(m.error())
                taken[m.value().decode()] = taken.get(m.value().decode(), 0) + 1
    for c in members:
        c.close()
    if len(taken) != 40 or any(n != 1 for n in taken.values()):
        raise AssertionError("the share group took %d distinct records, %d in all" % (len(taken), sum(taken.values())))


scenarios = [("create-topic", create), ("produce-codecs", produce), ("consume-group", consume),
             ("resume", resume), ("list-offsets", offsets), ("describe-configs", configs),
             ("error-path", error_path), ("transactions", transactions)]
librdkafka, librdkafka_int = confluent_kafka.libversion()
if librdkafka_int >= 0x02040000:
    scenarios.append(("consumer-protocol", consumer_protocol))
else:
    print("RESULT consumer-protocol n/a librdkafka %s predates KIP-848 (librdkafka 2.4+ with group.protocol=consumer)" % librdkafka, flush=True)
if hasattr(confluent_kafka, "ShareConsumer"):
    scenarios.append(("share-group", share_group))
else:
    print("RESULT share-group n/a confluent-kafka %s has no share consumer" % confluent_kafka.version()[0], flush=True)


# Security: the broker's SASL_SSL and SASL_PLAINTEXT listeners, the test CA
# and a user with ACLs on compat-sec-* only (CREEK_COMPAT_*, set by the Go suite).
env = __import__("os").environ


def sec_conf(listener, mechanism, password=None):
    conf = {"bootstrap.servers": env["CREEK_COMPAT_" + listener], "security.protocol": listener,
            "sasl.mechanisms": mechanism, "sasl.username": env["CREEK_COMPAT_USER"],
            "sasl.password": password or env["CREEK_COMPAT_PASSWORD"]}
    if listener == "SASL_SSL":
        conf["ssl.ca.location"] = env["CREEK_COMPAT_CA"]
    return conf


def sec_topic(scenario):
    return "compat-sec-" + topic[len("compat-"):] + "-" + scenario


def sec_round_trip(listener, mechanism, scenario):
    t, values = sec_topic(scenario), ["%s-%d" % (scenario, i) for i in range(3)]
    errors = []
    p = Producer(sec_conf(listener, mechanism))
    for v in values:
        p.produce(t, v.encode(), on_delivery=lambda err, m: err and errors.append(err))
    if p.flush(15) or errors:
        raise AssertionError("produce: %s" % errors)
    c = Consumer(dict(sec_conf(listener, mechanism), **{"group.id": t, "auto.offset.reset": "earliest"}))
    c.subscribe([t])
    got = poll_values(c, lambda got: len(got) >= len(values), timeout=20)
    c.close()
    if got != values:
        raise AssertionError("read %s, want %s" % (got, values))


def bad_password():
    seen = []
    p = Producer(dict(sec_conf("SASL_SSL", "SCRAM-SHA-512", "wrong"), error_cb=seen.append))
    deadline = time.time() + 10
    while not any(e.code() == KafkaError._AUTHENTICATION for e in seen) and time.time() < deadline:
        p.poll(0.2)
    if not any(e.code() == KafkaError._AUTHENTICATION for e in seen):
        raise AssertionError("no KafkaError._AUTHENTICATION from error_cb: %s" % seen)


def acl_denied():
    errors = []
    p = Producer(dict(sec_conf("SASL_SSL", "SCRAM-SHA-512"), **{"message.timeout.ms": 10000}))
    p.produce(env["CREEK_COMPAT_DENIED"], b"x", on_delivery=lambda err, m: errors.append(err))
    p.flush(15)
    if not errors or errors[0] is None or errors[0].code() != KafkaError.TOPIC_AUTHORIZATION_FAILED:
        raise AssertionError("want KafkaError.TOPIC_AUTHORIZATION_FAILED, got %s" % errors)


scenarios += [("sasl-scram-tls", lambda: sec_round_trip("SASL_SSL", "SCRAM-SHA-512", "sasl-scram-tls")),
              ("sasl-plain", lambda: sec_round_trip("SASL_PLAINTEXT", "PLAIN", "sasl-plain")),
              ("bad-password", bad_password), ("acl-denied", acl_denied)]
for name, fn in scenarios:
    result(name, fn)
