"""aiokafka (asyncio, PyPI) against creek: each scenario prints
"RESULT <scenario> <pass|fail|n/a> <detail>"."""
import asyncio, sys, traceback
import aiokafka
import aiokafka.codec
from aiokafka import AIOKafkaProducer, AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import OffsetOutOfRangeError

bootstrap, topic = sys.argv[1], sys.argv[2]
group = topic + "-g"
PER_CODEC = 10
TOPIC_ALREADY_EXISTS = 36
available = {"none": True, "gzip": aiokafka.codec.has_gzip(), "snappy": aiokafka.codec.has_snappy(),
             "lz4": aiokafka.codec.has_lz4(), "zstd": aiokafka.codec.has_zstd()}
codecs = [c for c, ok in available.items() if ok]


async def result(name, fn):
    try:
        detail = await fn() or ""
        status = "pass"
    except Exception as e:  # noqa: BLE001 - report any failure as the scenario's
        status, detail = "fail", "%s: %s" % (type(e).__name__, e)
        traceback.print_exc()
    print("RESULT %s %s %s" % (name, status, detail), flush=True)


async def admin_create(topics):
    """Creates topics; returns {name: error code}."""
    a = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await a.start()
    try:
        resp = await a.create_topics(topics)
    finally:
        await a.close()
    return {t[0]: t[1] for t in resp.topic_errors}


async def consume_group(n, t=None, **kw):
    c = AIOKafkaConsumer(t or topic, bootstrap_servers=bootstrap, group_id=kw.pop("group_id", group),
                         auto_offset_reset="earliest", enable_auto_commit=False, **kw)
    await c.start()
    got = []
    try:
        while len(got) < n:  # the caller bounds the time
            for msgs in (await c.getmany(timeout_ms=1000)).values():
                for m in msgs:
                    hs = dict(m.headers)
                    got.append((m.key.decode(), m.value.decode(), hs.get("codec", b"").decode()))
        await c.commit()
    finally:
        await c.stop()
    return got


async def create():
    errs = await admin_create([NewTopic(topic, 3, 1, topic_configs={"retention.ms": "3600000"})])
    if errs.get(topic) != 0:
        raise AssertionError("CreateTopics answered %s" % errs)


async def produce():
    for c in codecs:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             compression_type=None if c == "none" else c)
        await p.start()
        try:
            for i in range(PER_CODEC):
                await p.send(topic, key=b"%s-%d" % (c.encode(), i), value=("value %s %d 안녕" % (c, i)).encode(),
                             headers=[("codec", c.encode())])
            await p.flush()
        finally:
            await p.stop()
    missing = [c for c, ok in available.items() if not ok]
    if missing:
        return "codecs %s (no %s library)" % (",".join(codecs), ",".join(missing))


async def consume():
    got = sorted(await asyncio.wait_for(consume_group(len(codecs) * PER_CODEC), 60))
    want = sorted(("%s-%d" % (c, i), "value %s %d 안녕" % (c, i), c) for c in codecs for i in range(PER_CODEC))
    if got != want:
        raise AssertionError("got %d records, not the %d produced" % (len(got), len(want)))


async def resume():
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    await p.send_and_wait(topic, key=b"after-1", value=b"later")
    await p.send_and_wait(topic, key=b"after-2", value=b"later")
    await p.stop()
    got = sorted(r[0] for r in await asyncio.wait_for(consume_group(2), 60))
    if got != ["after-1", "after-2"]:
        raise AssertionError("after restart got %s" % got)


async def offsets():
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        tps = [TopicPartition(topic, i) for i in range(3)]
        end = sum((await c.end_offsets(tps)).values())
        begin = sum((await c.beginning_offsets(tps)).values())
        times = await c.offsets_for_times({tps[0]: 0})
    finally:
        await c.stop()
    if end != len(codecs) * PER_CODEC + 2 or begin != 0 or times[tps[0]].offset != 0:
        raise AssertionError("end %d begin %d times %s" % (end, begin, times))


async def configs():
    a = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await a.start()
    try:
        res = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await a.close()
    for entry in res[0].resources[0][4]:
        if entry[0] == "retention.ms" and entry[1] == "3600000":
            return
    raise AssertionError("retention.ms not described")


async def error_path():
    errs = await admin_create([NewTopic(topic, 3, 1)])
    if errs.get(topic) != TOPIC_ALREADY_EXISTS:
        raise AssertionError("creating an existing topic answered %s, want TOPIC_ALREADY_EXISTS (36)" % errs)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="none")
    await c.start()
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 1000000)
        try:
            await asyncio.wait_for(c.getone(), 15)
        except OffsetOutOfRangeError:
            return
    finally:
        await c.stop()
    raise AssertionError("fetching past the end did not raise OffsetOutOfRangeError")


async def transactions():
    txn_topic = topic + "-txn"
    errs = await admin_create([NewTopic(txn_topic, 1, 1)])
    if errs.get(txn_topic) != 0:
        raise AssertionError("CreateTopics answered %s" % errs)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=topic + "-txn-id")
    await p.start()
    try:
        for values, commit in [(["c0", "c1", "c2"], True), (["a0", "a1"], False), (["end"], True)]:
            await p.begin_transaction()
            for v in values:
                await p.send_and_wait(txn_topic, key=v.encode(), value=v.encode())  # aborted ones reach the log too
            if commit:
                await p.commit_transaction()
            else:
                await p.abort_transaction()
    finally:
        await p.stop()
    got = [r[1] for r in await asyncio.wait_for(
        consume_group(4, txn_topic, group_id=topic + "-txn-g", isolation_level="read_committed"), 60)]
    if got != ["c0", "c1", "c2", "end"]:
        raise AssertionError("read_committed read %s" % got)


# Security: the broker's SASL_SSL and SASL_PLAINTEXT listeners, the test CA
# and a user with ACLs on compat-sec-* only (CREEK_COMPAT_*, set by the Go suite).
env = __import__("os").environ


def sec_conf(listener, mechanism, password=None):
    conf = {"bootstrap_servers": env["CREEK_COMPAT_" + listener], "security_protocol": listener,
            "sasl_mechanism": mechanism, "sasl_plain_username": env["CREEK_COMPAT_USER"],
            "sasl_plain_password": password or env["CREEK_COMPAT_PASSWORD"]}
    if listener == "SASL_SSL":
        from aiokafka.helpers import create_ssl_context
        conf["ssl_context"] = create_ssl_context(cafile=env["CREEK_COMPAT_CA"])
    return conf


async def sec_round_trip(listener, mechanism, scenario):
    t = "compat-sec-" + topic[len("compat-"):] + "-" + scenario
    values = ["%s-%d" % (scenario, i) for i in range(3)]
    p = AIOKafkaProducer(**sec_conf(listener, mechanism))
    await p.start()
    try:
        for v in values:
            await p.send_and_wait(t, v.encode())
    finally:
        await p.stop()
    c = AIOKafkaConsumer(t, group_id=t, auto_offset_reset="earliest", enable_auto_commit=False,
                         **sec_conf(listener, mechanism))
    await c.start()
    got = []
    try:
        async def read():
            while len(got) < len(values):
                for msgs in (await c.getmany(timeout_ms=1000)).values():
                    got.extend(m.value.decode() for m in msgs)
        await asyncio.wait_for(read(), 30)
        await c.commit()
    finally:
        await c.stop()
    if got != values:
        raise AssertionError("read %s, want %s" % (got, values))


async def bad_password():
    # aiokafka raises the broker's SaslAuthenticationFailed on the
    # connection, but start() hands user code KafkaConnectionError ("Unable
    # to bootstrap") and only logs the SASL error: check it reached the log.
    import logging
    seen = []
    handler = logging.Handler()
    handler.emit = lambda r: seen.append(r.getMessage() + " " + str(r.exc_info[1] if r.exc_info else ""))
    logging.getLogger("aiokafka").addHandler(handler)
    p = AIOKafkaProducer(**sec_conf("SASL_SSL", "SCRAM-SHA-512", "wrong"))
    try:
        await asyncio.wait_for(p.start(), 30)
    except aiokafka.errors.KafkaError as e:
        if isinstance(e, aiokafka.errors.SaslAuthenticationFailed):
            return
        if not any("uthentication failed" in m for m in seen):
            raise AssertionError("%s, and no failed login in aiokafka's log: %s" % (type(e).__name__, seen[-5:]))
        return "refused, but aiokafka hands user code %s: the login failure is only in its log" % type(e).__name__
    finally:
        logging.getLogger("aiokafka").removeHandler(handler)
        await p.stop()
    raise AssertionError("a wrong password was accepted")


async def acl_denied():
    p = AIOKafkaProducer(request_timeout_ms=10000, **sec_conf("SASL_SSL", "SCRAM-SHA-512"))
    await p.start()
    try:
        await asyncio.wait_for(p.send_and_wait(env["CREEK_COMPAT_DENIED"], b"x"), 30)
    except aiokafka.errors.TopicAuthorizationFailedError:
        return
    finally:
        await p.stop()
    raise AssertionError("producing to a denied topic succeeded")


async def main():
    for name, fn in [("create-topic", create), ("produce-codecs", produce), ("consume-group", consume),
                     ("resume", resume), ("list-offsets", offsets), ("describe-configs", configs),
                     ("error-path", error_path), ("transactions", transactions)]:
        await result(name, fn)
    print("RESULT consumer-protocol n/a aiokafka %s speaks only the classic group protocol" % aiokafka.__version__,
          flush=True)
    print("RESULT share-group n/a aiokafka %s has no share group consumer" % aiokafka.__version__, flush=True)
    for name, fn in [("sasl-scram-tls", lambda: sec_round_trip("SASL_SSL", "SCRAM-SHA-512", "sasl-scram-tls")),
                     ("sasl-plain", lambda: sec_round_trip("SASL_PLAINTEXT", "PLAIN", "sasl-plain")),
                     ("bad-password", bad_password), ("acl-denied", acl_denied)]:
        await result(name, fn)


asyncio.run(main())
