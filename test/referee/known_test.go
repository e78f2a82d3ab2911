package referee

import "strings"

// knownDifferences are the answers in which creek deliberately differs from
// Apache Kafka, each with its reason; docs/broker.md lists them for users.
// A scenario is matched by prefix, a path with its indexes dropped.
var knownDifferences = []struct {
	scenario, path, why string
}{
	{"ApiVersions", "ApiKeys", "creek serves the APIs a single node needs; the version ranges are those creek implements"},
	{"ApiVersions", "SupportedFeatures", "creek has no KRaft feature flags"},
	{"ApiVersions", "FinalizedFeatures", "creek has no KRaft feature flags"},
	{"ApiVersions", "FinalizedFeaturesEpoch", "creek has no KRaft feature flags"},
	{"ApiVersions", "ZkMigrationReady", "creek never ran on ZooKeeper"},
	{"Produce codec 7", "Topics.Partitions.ErrorCode", "Kafka answers UNKNOWN_SERVER_ERROR (an IllegalArgumentException inside the broker); creek answers UNSUPPORTED_COMPRESSION_TYPE, naming the codec"},
	// Not compared: a produce whose record set is null. Kafka 4.4 never
	// answers it (the connection waits); creek answers INVALID_RECORD.
}

func knownDifference(scenario, path string) (string, bool) {
	p := pathPattern(path)
	for _, k := range knownDifferences {
		if strings.HasPrefix(scenario, k.scenario) && (p == k.path || strings.HasPrefix(p, k.path+".")) {
			return k.why, true
		}
	}
	return "", false
}
