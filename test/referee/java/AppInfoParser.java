// connect-file's FileStream connectors (Maven Central has them up to 4.3.1)
// ask org.apache.kafka.common.utils.AppInfoParser for their version; Kafka
// 4.4 moved that class to utils.internals. This bridge, compiled by the
// referee test, answers for it so the 4.3.1 connectors run in a 4.4 worker.
package org.apache.kafka.common.utils;

public final class AppInfoParser {
    private AppInfoParser() {}

    public static String getVersion() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getVersion();
    }

    public static String getCommitId() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getCommitId();
    }
}
