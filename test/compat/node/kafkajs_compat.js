// KafkaJS against creek: each scenario prints
// "RESULT <scenario> <pass|fail|n/a> <detail>".
'use strict'
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const { Kafka, logLevel, CompressionTypes, CompressionCodecs, ConfigResourceTypes } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('kafkajs-lz4')
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec

const [bootstrap, topic] = process.argv.slice(2)
const group = topic + '-g'
const PER_CODEC = 10
// ZSTD needs @kafkajs/zstd, a native module that must be compiled.
const codecs = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4 }
const kafka = new Kafka({ clientId: 'compat-kafkajs', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 3 } })

async function result (name, fn) {
  let status = 'pass'
  let detail = ''
  try {
    detail = (await fn()) || ''
  } catch (e) {
    status = 'fail'
    detail = `${e.name}: ${e.message}`
    console.error(e)
  }
  console.log(`RESULT ${name} ${status} ${detail}`)
}

async function consumeGroup (n) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const got = []
  const last = {}
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out with ${got.length} of ${n} records`)), 30000)
    consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        got.push([message.key.toString(), message.value.toString(), (message.headers.codec || '').toString()])
        last[partition] = message.offset
        if (got.length >= n) { clearTimeout(timer); resolve() }
      }
    }).catch(reject)
  })
  await consumer.commitOffsets(Object.entries(last).map(([p, o]) => ({ topic, partition: Number(p), offset: (BigInt(o) + 1n).toString() })))
  await consumer.disconnect()
  return got
}

function expected (cs) {
  const out = []
  for (const c of cs) for (let i = 0; i < PER_CODEC; i++) out.push([`${c}-${i}`, `value ${c} ${i} 안녕`, c])
  return out
}

function sameSorted (a, b) {
  const s = x => x.map(r => r.join('|')).sort().join('\n')
  return s(a) === s(b)
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()

  await result('create-topic', async () => {
    const created = await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] })
    if (!created) throw new Error('createTopics returned false')
  })
  await result('produce-codecs', async () => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    for (const [name, type] of Object.entries(codecs)) {
      const messages = []
      for (let i = 0; i < PER_CODEC; i++) messages.push({ key: `${name}-${i}`, value: `value ${name} ${i} 안녕`, headers: { codec: name } })
      await producer.send({ topic, acks: -1, compression: type, messages })
    }
    await producer.disconnect()
    return 'codecs none,gzip,snappy,lz4, idempotent (zstd needs the native @kafkajs/zstd)'
  })
  await result('consume-group', async () => {
    const got = await consumeGroup(Object.keys(codecs).length * PER_CODEC)
    if (!sameSorted(got, expected(Object.keys(codecs)))) throw new Error(`got ${got.length} records that differ from those produced`)
  })
  await result('resume', async () => {
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, messages: [{ key: 'after-1', value: 'later' }, { key: 'after-2', value: 'later' }] })
    await producer.disconnect()
    const got = (await consumeGroup(2)).map(r => r[0]).sort()
    if (got.join(',') !== 'after-1,after-2') throw new Error(`after restart got ${got}`)
  })
  await result('list-offsets', async () => {
    const offsets = await admin.fetchTopicOffsets(topic)
    const high = offsets.reduce((s, o) => s + Number(o.high), 0)
    const low = offsets.reduce((s, o) => s + Number(o.low), 0)
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, 0)
    if (high !== Object.keys(codecs).length * PER_CODEC + 2 || low !== 0 || byTime.some(o => Number(o.offset) !== 0)) {
      throw new Error(`high ${high} low ${low} by time ${JSON.stringify(byTime)}`)
    }
  })
  await result('describe-configs', async () => {
    const res = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }] })
    const entry = res.resources[0].configEntries.find(e => e.configName === 'retention.ms')
    if (!entry || entry.configValue !== '3600000') throw new Error(`retention.ms: ${JSON.stringify(entry)}`)
  })
  await result('error-path', async () => {
    const producer = kafka.producer({ retry: { retries: 0 } })
    await producer.connect()
    try {
      await producer.send({ topic: 'not a valid topic!', messages: [{ value: 'x' }] })
    } catch (e) {
      await producer.disconnect()
      if (/invalid|illegal|topic/i.test(`${e.name} ${e.message} ${e.type || ''}`)) return
      throw e
    }
    throw new Error('producing to an invalid topic name did not fail')
  })
  await result('transactions', async () => {
    const txTopic = topic + '-txn'
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: txTopic, numPartitions: 1, replicationFactor: 1 }] })
    const producer = kafka.producer({ transactionalId: topic + '-txn-id', idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    for (const [values, commit] of [[['c0', 'c1', 'c2'], true], [['a0', 'a1'], false], [['end'], true]]) {
      const tx = await producer.transaction()
      await tx.send({ topic: txTopic, messages: values.map(v => ({ key: v, value: v })) })
      if (commit) await tx.commit()
      else await tx.abort()
    }
    await producer.disconnect()
    const consumer = kafka.consumer({ groupId: topic + '-txn-g', readUncommitted: false })
    await consumer.connect()
    await consumer.subscribe({ topic: txTopic, fromBeginning: true })
    const got = []
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read_committed read ${JSON.stringify(got)} before the timeout`)), 30000)
      consumer.run({
        eachMessage: async ({ message }) => {
          got.push(message.value.toString())
          if (message.value.toString() === 'end') { clearTimeout(timer); resolve() }
        }
      })
    })
    await consumer.disconnect()
    if (got.join(',') !== 'c0,c1,c2,end') throw new Error(`read_committed read ${JSON.stringify(got)}`)
  })
  console.log('RESULT consumer-protocol n/a KafkaJS speaks only the classic group protocol')
  console.log('RESULT share-group n/a KafkaJS has no share group consumer')
  await result('sasl-scram-tls', () => secRoundTrip('SASL_SSL', 'scram-sha-512', 'sasl-scram-tls'))
  await result('sasl-plain', () => secRoundTrip('SASL_PLAINTEXT', 'plain', 'sasl-plain'))
  await result('bad-password', async () => {
    const producer = secKafka('SASL_SSL', 'scram-sha-512', 'wrong').producer()
    try {
      await producer.connect()
    } catch (e) {
      if (e.name === 'KafkaJSSASLAuthenticationError') return
      throw new Error(`refused with ${e.name}: ${e.message}, not KafkaJSSASLAuthenticationError`)
    } finally {
      await producer.disconnect()
    }
    throw new Error('a wrong password was accepted')
  })
  await result('acl-denied', async () => {
    const producer = secKafka('SASL_SSL', 'scram-sha-512').producer()
    await producer.connect()
    try {
      await producer.send({ topic: process.env.CREEK_COMPAT_DENIED, messages: [{ value: 'x' }] })
    } catch (e) {
      // KafkaJS wraps the broker's error (its text for TOPIC_AUTHORIZATION_FAILED,
      // code 29) in a non-retriable error.
      const cause = e.originalError || e.cause || e
      if (cause.type === 'TOPIC_AUTHORIZATION_FAILED' || /Topic authorization failed/.test(e.message)) return
      throw new Error(`refused with ${e.name}: ${e.message}, not TOPIC_AUTHORIZATION_FAILED`)
    } finally {
      await producer.disconnect()
    }
    throw new Error('producing to a denied topic succeeded')
  })
  await admin.disconnect()
}

// Security: the broker's SASL_SSL and SASL_PLAINTEXT listeners, the test CA
// and a user with ACLs on compat-sec-* only (CREEK_COMPAT_*, set by the Go suite).
function secKafka (listener, mechanism, password) {
  const env = process.env
  return new Kafka({
    clientId: 'compat-kafkajs-sec',
    brokers: [env['CREEK_COMPAT_' + listener]],
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 },
    ssl: listener === 'SASL_SSL' ? { ca: [require('fs').readFileSync(env.CREEK_COMPAT_CA, 'utf8')] } : false,
    sasl: { mechanism, username: env.CREEK_COMPAT_USER, password: password || env.CREEK_COMPAT_PASSWORD }
  })
}

async function secRoundTrip (listener, mechanism, scenario) {
  const k = secKafka(listener, mechanism)
  const t = 'compat-sec-' + topic.slice('compat-'.length) + '-' + scenario
  const values = [0, 1, 2].map(i => `${scenario}-${i}`)
  const producer = k.producer({ allowAutoTopicCreation: true })
  await producer.connect()
  for (const v of values) await producer.send({ topic: t, messages: [{ value: v }] })
  await producer.disconnect()
  const consumer = k.consumer({ groupId: t, sessionTimeout: 10000, heartbeatInterval: 500 })
  await consumer.connect()
  await consumer.subscribe({ topic: t, fromBeginning: true })
  const got = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${JSON.stringify(got)} before the timeout`)), 30000)
    consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value.toString())
        if (got.length === values.length) { clearTimeout(timer); resolve() }
      }
    })
  })
  await consumer.disconnect()
  if (got.join(',') !== values.join(',')) throw new Error(`read ${JSON.stringify(got)}, want ${JSON.stringify(values)}`)
}

main().then(() => process.exit(0), e => { console.error(e); process.exit(1) })
