// A Kafka Connect source connector that copies the lines of a file into a
// topic, one record per line, keeping its place in the file as a source
// offset (the byte position after the last line copied). Run by
// TestKafkaConnectDistributedWorker: Apache Kafka's FileStreamSource is
// built against an older runtime than the one the test runs.
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.source.SourceConnector;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

public class LinesSource extends SourceConnector {
    private Map<String, String> config;

    @Override public String version() { return "1"; }
    @Override public void start(Map<String, String> props) { config = props; }
    @Override public Class<? extends Task> taskClass() { return LinesTask.class; }
    @Override public List<Map<String, String>> taskConfigs(int max) { return Collections.singletonList(config); }
    @Override public void stop() {}
    @Override public ConfigDef config() {
        return new ConfigDef()
            .define("file", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "file to copy")
            .define("topic", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "topic to copy to");
    }

    public static class LinesTask extends SourceTask {
        private String file, topic;
        private long position;

        @Override public String version() { return "1"; }

        @Override public void start(Map<String, String> props) {
            file = props.get("file");
            topic = props.get("topic");
            Map<String, Object> offset = context.offsetStorageReader().offset(Collections.singletonMap("file", file));
            position = offset == null ? 0 : (Long) offset.get("position");
        }

        @Override public List<SourceRecord> poll() throws InterruptedException {
            List<SourceRecord> out = new ArrayList<>();
            try (RandomAccessFile f = new RandomAccessFile(file, "r")) {
                f.seek(position);
                String line;
                while ((line = f.readLine()) != null) {
                    position = f.getFilePointer();
                    out.add(new SourceRecord(Collections.singletonMap("file", file), Collections.singletonMap("position", position),
                        topic, null, null, null, Schema.STRING_SCHEMA, new String(line.getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8)));
                }
            } catch (IOException e) {
                // not there yet
            }
            if (out.isEmpty()) {
                Thread.sleep(100);
                return null;
            }
            return out;
        }

        @Override public void stop() {}
    }
}
