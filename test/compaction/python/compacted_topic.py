"""kafka-python (Debian's python3-kafka 2.0.2) on a compacted topic.

  compacted_topic.py BOOTSTRAP TOPIC produce   create the topic, write gzip batches and
                                               tombstones, try a record without a key
  compacted_topic.py BOOTSTRAP TOPIC consume   print every record as JSON lines
"""
import json
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

bootstrap, topic, phase = sys.argv[1], sys.argv[2], sys.argv[3]

if phase == "produce":
    KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic(topic, 1, 1, topic_configs={
        "cleanup.policy": "compact", "segment.bytes": "500",
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "1000"})])
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip", batch_size=600, linger_ms=5)
    for i in range(600):
        p.send(topic, key=b"key-%02d" % (i % 20), value=b"value %d" % i)
    for k in range(3):
        p.send(topic, key=b"key-%02d" % k, value=None)
    for i in range(60):
        p.send(topic, key=b"key-%02d" % (3 + i % 17), value=b"late %d" % i)
    p.flush()
    try:
        p.send(topic, key=None, value=b"no key").get(timeout=10)
        print("KEYLESS accepted")
    except Exception as e:  # noqa: BLE001 - the refusal's type is what is reported
        print("KEYLESS refused %s %s" % (type(e).__name__, e))
    p.close()
elif phase == "consume":
    c = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=5000)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    end = c.end_offsets([tp])[tp]
    c.seek_to_beginning(tp)
    for m in c:
        print(json.dumps([m.offset, m.key.decode(), None if m.value is None else m.value.decode()]), flush=True)
        if m.offset >= end - 1:
            break
    c.close()
