// Apache Kafka's Java client (kafka-clients) against creek: the compatibility
// scenarios, each printing "RESULT <scenario> <pass|fail|n/a> <detail>".
//
//   java Compat BOOTSTRAP TOPIC [SCENARIO...]   (no scenario: all of them)
//
// The same source compiles against kafka-clients 4.x and 2.x: what only 4.x
// has (KafkaShareConsumer, group.protocol=consumer, a group's type) is
// reached by reflection, and is n/a on a client that lacks it.

import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

public class Compat {
    static final int PER_CODEC = 10;
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};

    static String bootstrap, topic, group;
    static final String version = clientVersion();
    static final int major = Integer.parseInt(version.split("\\.")[0]);

    /** The client's version, from AppInfoParser (moved to an internals package in 4.x). */
    static String clientVersion() {
        for (String name : new String[] {"org.apache.kafka.common.utils.internals.AppInfoParser",
                "org.apache.kafka.common.utils.AppInfoParser"}) {
            try {
                return (String) Class.forName(name).getMethod("getVersion").invoke(null);
            } catch (ReflectiveOperationException e) {
                // try the next
            }
        }
        throw new IllegalStateException("no AppInfoParser in this kafka-clients");
    }

    /** A scenario: returns a detail for the pass line, or throws. */
    interface Scenario {
        String run() throws Exception;
    }

    /** Thrown by a scenario the client cannot run. */
    static class NotApplicable extends Exception {
        private static final long serialVersionUID = 1L;

        NotApplicable(String why) {
            super(why);
        }
    }

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        topic = args[1];
        group = topic + "-g";
        Map<String, Scenario> all = new LinkedHashMap<>();
        all.put("create-topic", Compat::createTopic);
        all.put("produce-codecs", Compat::produceCodecs);
        all.put("consume-group", Compat::consumeGroup);
        all.put("resume", Compat::resume);
        all.put("list-offsets", Compat::listOffsets);
        all.put("describe-configs", Compat::describeConfigs);
        all.put("error-path", Compat::errorPath);
        all.put("transactions", Compat::transactions);
        all.put("consumer-protocol", Compat::consumerProtocol);
        all.put("share-group", Compat::shareGroup);
        all.put("sasl-scram-tls", () -> secRoundTrip("SASL_SSL", "SCRAM-SHA-512", "sasl-scram-tls"));
        all.put("sasl-plain", () -> secRoundTrip("SASL_PLAINTEXT", "PLAIN", "sasl-plain"));
        all.put("bad-password", Compat::badPassword);
        all.put("acl-denied", Compat::aclDenied);
        List<String> run = args.length > 2 ? List.of(args).subList(2, args.length) : new ArrayList<>(all.keySet());
        for (String name : run) {
            Scenario s = all.get(name);
            if (s == null) {
                System.err.println("unknown scenario " + name + "; scenarios: " + all.keySet());
                System.exit(2);
            }
            String status = "pass", detail;
            try {
                detail = s.run();
            } catch (NotApplicable e) {
                status = "n/a";
                detail = e.getMessage();
            } catch (Throwable e) {
                status = "fail";
                Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
                detail = cause.getClass().getSimpleName() + ": " + cause.getMessage();
                e.printStackTrace();
            }
            System.out.println("RESULT " + name + " " + status + " " + (detail == null ? "" : detail));
            System.out.flush();
        }
        System.exit(0); // client threads left by a failed scenario must not keep the JVM
    }

    static Properties props(String... kv) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        for (int i = 0; i < kv.length; i += 2) {
            p.put(kv[i], kv[i + 1]);
        }
        return p;
    }

    // Security: the broker's SASL_SSL and SASL_PLAINTEXT listeners, the test
    // CA (a PEM truststore, KIP-651) and a user with ACLs on compat-sec-*
    // only (CREEK_COMPAT_*, set by the Go suite).
    static Properties secProps(String listener, String mechanism, String password) {
        Properties p = new Properties();
        p.put("bootstrap.servers", System.getenv("CREEK_COMPAT_" + listener));
        p.put("security.protocol", listener);
        p.put("sasl.mechanism", mechanism);
        String module = mechanism.equals("PLAIN") ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                : "org.apache.kafka.common.security.scram.ScramLoginModule";
        p.put("sasl.jaas.config", module + " required username=\"" + System.getenv("CREEK_COMPAT_USER")
                + "\" password=\"" + (password != null ? password : System.getenv("CREEK_COMPAT_PASSWORD")) + "\";");
        if (listener.equals("SASL_SSL")) {
            p.put("ssl.truststore.type", "PEM");
            p.put("ssl.truststore.location", System.getenv("CREEK_COMPAT_CA"));
        }
        p.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("max.block.ms", "15000");
        return p;
    }

    static String secRoundTrip(String listener, String mechanism, String scenario) throws Exception {
        String t = "compat-sec-" + topic.substring("compat-".length()) + "-" + scenario;
        List<String> values = List.of(scenario + "-0", scenario + "-1", scenario + "-2");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(secProps(listener, mechanism, null))) {
            for (String v : values) {
                p.send(new ProducerRecord<>(t, v)).get();
            }
        }
        Properties cp = secProps(listener, mechanism, null);
        cp.put("group.id", t);
        cp.put("auto.offset.reset", "earliest");
        cp.put("enable.auto.commit", "false");
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
            c.subscribe(List.of(t));
            long deadline = System.currentTimeMillis() + 30_000;
            while (got.size() < values.size() && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    got.add(r.value());
                }
            }
            c.commitSync();
        }
        if (!got.equals(values)) {
            throw new AssertionError("read " + got + ", want " + values);
        }
        return null;
    }

    static String badPassword() throws Exception {
        return refusedWith(secProps("SASL_SSL", "SCRAM-SHA-512", "wrong"), "compat-sec-bad-password",
                org.apache.kafka.common.errors.SaslAuthenticationException.class, "a wrong password was accepted");
    }

    static String aclDenied() throws Exception {
        return refusedWith(secProps("SASL_SSL", "SCRAM-SHA-512", null), System.getenv("CREEK_COMPAT_DENIED"),
                org.apache.kafka.common.errors.TopicAuthorizationException.class, "producing to a denied topic succeeded");
    }

    // refusedWith produces one record and expects the send to fail with the
    // exception named; ifAccepted says what went wrong when it did not fail.
    static String refusedWith(Properties props, String topic, Class<? extends Throwable> want, String ifAccepted) throws Exception {
        try (KafkaProducer<String, String> p = new KafkaProducer<>(props)) {
            p.send(new ProducerRecord<>(topic, "x")).get();
        } catch (ExecutionException | org.apache.kafka.common.KafkaException e) {
            Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
            if (want.isInstance(cause)) {
                return null;
            }
            throw new AssertionError("refused with " + cause.getClass().getSimpleName() + ": " + cause.getMessage()
                    + ", not " + want.getSimpleName());
        }
        throw new AssertionError(ifAccepted);
    }

    static Admin admin() {
        return Admin.create(props());
    }

    static KafkaProducer<String, String> producer(String... kv) {
        Properties p = props(kv);
        p.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<String, String> consumer(String... kv) {
        Properties p = props("auto.offset.reset", "earliest", "enable.auto.commit", "false");
        for (int i = 0; i < kv.length; i += 2) {
            p.put(kv[i], kv[i + 1]);
        }
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    static void createTopic(Admin a, String name, int partitions, Map<String, String> configs) throws Exception {
        a.createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(configs))).all().get();
    }

    static void produceValues(String t, int first, int n) throws Exception {
        try (KafkaProducer<String, String> p = producer()) {
            for (int i = first; i < first + n; i++) {
                p.send(new ProducerRecord<>(t, String.valueOf(i), String.valueOf(i))).get();
            }
        }
    }

    static String header(ConsumerRecord<String, String> r, String name) {
        Header h = r.headers().lastHeader(name);
        return h == null ? "" : new String(h.value(), StandardCharsets.UTF_8);
    }

    /** Reads n records in the scenario's group and commits. */
    static List<String> readGroup(int n) {
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer("group.id", group)) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 30_000;
            while (got.size() < n && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    got.add(r.key() + "|" + r.value() + "|" + header(r, "codec"));
                }
            }
            c.commitSync();
        }
        Collections.sort(got);
        return got;
    }

    static String createTopic() throws Exception {
        try (Admin a = admin()) {
            createTopic(a, topic, 3, Map.of("retention.ms", "3600000"));
        }
        return "";
    }

    static String produceCodecs() throws Exception {
        for (String codec : CODECS) {
            try (KafkaProducer<String, String> p = producer("acks", "all", "enable.idempotence", "true",
                    "compression.type", codec)) {
                for (int i = 0; i < PER_CODEC; i++) {
                    ProducerRecord<String, String> r = new ProducerRecord<>(topic, codec + "-" + i,
                            "value " + codec + " " + i + " 안녕");
                    r.headers().add("codec", codec.getBytes(StandardCharsets.UTF_8));
                    p.send(r);
                }
                p.flush();
            }
        }
        return "";
    }

    static String consumeGroup() {
        List<String> want = new ArrayList<>();
        for (String codec : CODECS) {
            for (int i = 0; i < PER_CODEC; i++) {
                want.add(codec + "-" + i + "|value " + codec + " " + i + " 안녕|" + codec);
            }
        }
        Collections.sort(want);
        List<String> got = readGroup(want.size());
        if (!got.equals(want)) {
            throw new AssertionError("got " + got.size() + " records, not the " + want.size() + " produced");
        }
        return "";
    }

    static String resume() throws Exception {
        try (KafkaProducer<String, String> p = producer()) {
            p.send(new ProducerRecord<>(topic, "after-1", "later")).get();
            p.send(new ProducerRecord<>(topic, "after-2", "later")).get();
        }
        List<String> got = readGroup(2);
        if (!got.equals(List.of("after-1|later|", "after-2|later|"))) {
            throw new AssertionError("after restart got " + got);
        }
        return "";
    }

    static String listOffsets() throws Exception {
        Map<TopicPartition, OffsetSpec> earliest = new HashMap<>(), latest = new HashMap<>();
        for (int p = 0; p < 3; p++) {
            earliest.put(new TopicPartition(topic, p), OffsetSpec.earliest());
            latest.put(new TopicPartition(topic, p), OffsetSpec.latest());
        }
        long begin = 0, end = 0;
        try (Admin a = admin()) {
            for (var e : a.listOffsets(earliest).all().get().values()) {
                begin += e.offset();
            }
            for (var e : a.listOffsets(latest).all().get().values()) {
                end += e.offset();
            }
        }
        OffsetAndTimestamp byTime;
        try (KafkaConsumer<String, String> c = consumer()) {
            TopicPartition p0 = new TopicPartition(topic, 0);
            byTime = c.offsetsForTimes(Map.of(p0, 0L)).get(p0);
        }
        if (begin != 0 || end != CODECS.length * PER_CODEC + 2 || byTime == null || byTime.offset() != 0) {
            throw new AssertionError("earliest offsets add up to " + begin + ", latest to " + end + ", by time 0: " + byTime);
        }
        return "";
    }

    static String describeConfigs() throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        try (Admin a = admin()) {
            Config c = a.describeConfigs(List.of(r)).all().get().get(r);
            ConfigEntry e = c.get("retention.ms");
            if (e == null || !"3600000".equals(e.value()) || e.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG) {
                throw new AssertionError("retention.ms described as " + e);
            }
        }
        return "";
    }

    static String errorPath() throws Exception {
        try (Admin a = admin()) {
            createTopic(a, topic, 3, Map.of());
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TopicExistsException) {
                return "";
            }
            throw e;
        }
        throw new AssertionError("creating an existing topic did not fail");
    }

    static String transactions() throws Exception {
        String t = topic + "-txn";
        try (Admin a = admin()) {
            createTopic(a, t, 1, Map.of());
        }
        try (KafkaProducer<String, String> p = producer("transactional.id", topic + "-txn-id")) {
            p.initTransactions();
            String[][] txns = {{"c0", "c1", "c2"}, {"a0", "a1"}, {"end"}};
            boolean[] commit = {true, false, true};
            for (int i = 0; i < txns.length; i++) {
                p.beginTransaction();
                for (String v : txns[i]) {
                    p.send(new ProducerRecord<>(t, v, v));
                }
                p.flush(); // the aborted records reach the log too
                if (commit[i]) {
                    p.commitTransaction();
                } else {
                    p.abortTransaction();
                }
            }
        }
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer("group.id", topic + "-txn-g", "isolation.level", "read_committed")) {
            c.subscribe(List.of(t));
            long deadline = System.currentTimeMillis() + 30_000;
            while (!got.contains("end") && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    got.add(r.value());
                }
            }
        }
        if (!got.equals(List.of("c0", "c1", "c2", "end"))) {
            throw new AssertionError("read_committed read " + got);
        }
        return "";
    }

    /**
     * Two members of a KIP-848 group share 4 partitions and read 40 records
     * once between them; the group is described as a consumer-protocol group
     * of two; after they commit, a new member reads only the 4 records
     * produced after.
     */
    static String consumerProtocol() throws Exception {
        if (major < 4) {
            throw new NotApplicable("kafka-clients " + version + " speaks only the classic group protocol (group.protocol=consumer is 4.0+)");
        }
        String t = topic + "-848", g = topic + "-848-g";
        try (Admin a = admin()) {
            createTopic(a, t, 4, Map.of());
        }
        List<KafkaConsumer<String, String>> members = new ArrayList<>();
        try {
            for (int i = 0; i < 2; i++) {
                KafkaConsumer<String, String> c = consumer("group.id", g, "group.protocol", "consumer");
                c.subscribe(List.of(t));
                members.add(c);
            }
            // The records come once both members own their partitions, so
            // that none moves while they are read.
            long deadline = System.currentTimeMillis() + 60_000;
            while (true) {
                Set<TopicPartition> a0 = members.get(0).assignment(), a1 = members.get(1).assignment();
                Set<TopicPartition> union = new HashSet<>(a0);
                union.addAll(a1);
                if (!a0.isEmpty() && !a1.isEmpty() && union.size() == 4 && a0.size() + a1.size() == 4) {
                    break;
                }
                if (System.currentTimeMillis() > deadline) {
                    throw new AssertionError("the members own " + a0 + " and " + a1 + " after 60 s");
                }
                for (KafkaConsumer<String, String> c : members) {
                    if (!c.poll(Duration.ofMillis(100)).isEmpty()) {
                        throw new AssertionError("records before any were produced");
                    }
                }
            }
            produceValues(t, 0, 40);
            Map<String, Integer> seen = new TreeMap<>();
            int[] byMember = new int[2];
            deadline = System.currentTimeMillis() + 60_000;
            while (seen.size() < 40 && System.currentTimeMillis() < deadline) {
                for (int i = 0; i < 2; i++) {
                    for (ConsumerRecord<String, String> r : members.get(i).poll(Duration.ofMillis(200))) {
                        seen.merge(r.value(), 1, Integer::sum);
                        byMember[i]++;
                    }
                }
            }
            int total = seen.values().stream().mapToInt(Integer::intValue).sum();
            if (seen.size() != 40 || total != 40) {
                throw new AssertionError("the two members read " + seen.size() + " distinct records, " + total + " in all");
            }
            try (Admin a = admin()) {
                ConsumerGroupDescription d = a.describeConsumerGroups(List.of(g)).all().get().get(g);
                Object type = d.getClass().getMethod("type").invoke(d); // GroupType, 4.x only
                if (d.members().size() != 2 || !"Consumer".equals(String.valueOf(type))) {
                    throw new AssertionError("described as a " + type + " group of " + d.members().size() + " members");
                }
            }
            for (KafkaConsumer<String, String> c : members) {
                c.commitSync();
            }
            for (KafkaConsumer<String, String> c : members) {
                c.close();
            }
            members.clear();
            produceValues(t, 40, 4);
            List<String> got = new ArrayList<>();
            try (KafkaConsumer<String, String> c = consumer("group.id", g, "group.protocol", "consumer")) {
                c.subscribe(List.of(t));
                deadline = System.currentTimeMillis() + 30_000;
                while (got.size() < 4 && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                        got.add(r.value());
                    }
                }
            }
            Collections.sort(got);
            if (!got.equals(List.of("40", "41", "42", "43"))) {
                throw new AssertionError("the new member read " + got + ", want only the 4 new records");
            }
            if (byMember[0] == 0 || byMember[1] == 0) {
                throw new AssertionError("one member read all 40 records");
            }
            return "";
        } finally {
            for (KafkaConsumer<String, String> c : members) {
                c.close();
            }
        }
    }

    /** Two KafkaShareConsumers (KIP-932) take each of 40 records exactly once. */
    static String shareGroup() throws Exception {
        Class<?> cls;
        try {
            cls = Class.forName("org.apache.kafka.clients.consumer.KafkaShareConsumer");
        } catch (ClassNotFoundException e) {
            throw new NotApplicable("kafka-clients " + version + " has no KafkaShareConsumer (4.0+)");
        }
        String t = topic + "-share", g = topic + "-share-g";
        try (Admin a = admin()) {
            createTopic(a, t, 2, Map.of());
            // A share group starts at the latest records unless its config says otherwise.
            ConfigResource r = new ConfigResource(ConfigResource.Type.valueOf("GROUP"), g);
            a.incrementalAlterConfigs(Map.of(r, List.of(new AlterConfigOp(
                    new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET)))).all().get();
        }
        produceValues(t, 0, 40);
        Constructor<?> make = cls.getConstructor(Properties.class, Deserializer.class, Deserializer.class);
        Method subscribe = cls.getMethod("subscribe", Collection.class);
        Method poll = cls.getMethod("poll", Duration.class);
        Method commitSync = cls.getMethod("commitSync");
        Method close = cls.getMethod("close");
        List<Object> members = new ArrayList<>();
        Map<String, Integer> taken = new TreeMap<>();
        try {
            for (int i = 0; i < 2; i++) {
                Object c = make.newInstance(props("group.id", g), new StringDeserializer(), new StringDeserializer());
                members.add(c);
                subscribe.invoke(c, List.of(t));
            }
            long deadline = System.currentTimeMillis() + 60_000;
            while (taken.size() < 40 && System.currentTimeMillis() < deadline) {
                for (Object c : members) {
                    @SuppressWarnings("unchecked")
                    ConsumerRecords<String, String> rs = (ConsumerRecords<String, String>) poll.invoke(c, Duration.ofMillis(300));
                    for (ConsumerRecord<String, String> r : rs) {
                        taken.merge(r.value(), 1, Integer::sum);
                    }
                    commitSync.invoke(c); // implicit mode: accepts what the last poll returned
                }
            }
        } finally {
            for (Object c : members) {
                close.invoke(c);
            }
        }
        int total = taken.values().stream().mapToInt(Integer::intValue).sum();
        if (taken.size() != 40 || total != 40) {
            throw new AssertionError("the share group took " + taken.size() + " distinct records, " + total + " in all");
        }
        return "";
    }
}
