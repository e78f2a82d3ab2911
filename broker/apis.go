package broker

import (
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// api is one Kafka API the broker serves: its version range and handler.
// A handler returns the response and, optionally, a finish function that
// completes it later, off the connection's read path.
type api struct {
	min, max int16
	handle   func(*Broker, *request, kmsg.Request) (kmsg.Response, func())
}

// apis lists what the broker serves. Fetch starts at v4, the first version
// whose answer may hold record batches v2 (Kafka 0.11); older fetchers expect
// message formats v0/v1, which creek does not store or convert to. Produce
// starts at v0 even so: librdkafka before 2.11 turns compression off unless
// Produce v0 is advertised, and a produce request of any version carrying a
// v0/v1 message set is refused per partition with UNSUPPORTED_VERSION by
// the storage layer. The other APIs start at v0 so that clients still
// shipped by Linux distributions work. Ceilings are in versions.go.
var apis = map[int16]api{}

func init() {
	registerAsync(kmsg.Produce, 0, handleProduce)
	registerAsync(kmsg.Fetch, 4, handleFetch)
	register(kmsg.ListOffsets, 0, handleListOffsets)
	register(kmsg.Metadata, 0, handleMetadata)
	register(kmsg.ApiVersions, 0, handleApiVersions)
	register(kmsg.CreateTopics, 0, handleCreateTopics)
	register(kmsg.DeleteTopics, 0, handleDeleteTopics)
	register(kmsg.DeleteRecords, 0, handleDeleteRecords)
	register(kmsg.InitProducerID, 0, handleInitProducerID)
	register(kmsg.OffsetForLeaderEpoch, 0, handleOffsetForLeaderEpoch)
	register(kmsg.DescribeConfigs, 0, handleDescribeConfigs)
	register(kmsg.AlterConfigs, 0, handleAlterConfigs)
	register(kmsg.DescribeLogDirs, 0, handleDescribeLogDirs)
	register(kmsg.CreatePartitions, 0, handleCreatePartitions)
	register(kmsg.IncrementalAlterConfigs, 0, handleIncrementalAlterConfigs)
	register(kmsg.DescribeCluster, 0, handleDescribeCluster)
}

// register adds a handler whose response is complete when it returns.
func register[Req kmsg.Request](key kmsg.Key, min int16, fn func(*Broker, *request, Req) kmsg.Response) {
	registerAsync(key, min, func(b *Broker, r *request, req Req) (kmsg.Response, func()) {
		return fn(b, r, req), nil
	})
}

// registerAsync adds a handler that may finish its response later.
func registerAsync[Req kmsg.Request](key kmsg.Key, min int16, fn func(*Broker, *request, Req) (kmsg.Response, func())) {
	max, ok := maxVersions[key]
	if !ok || max > key.Request().MaxVersion() || max < min {
		panic(fmt.Sprintf("broker: %s needs an entry in maxVersions (versions.go) within %d..%d, the versions kmsg knows from the oldest served", key.Name(), min, key.Request().MaxVersion()))
	}
	apis[key.Int16()] = api{
		min: min,
		max: max,
		handle: func(b *Broker, r *request, req kmsg.Request) (kmsg.Response, func()) {
			return fn(b, r, req.(Req))
		},
	}
}

// apiVersionKeys is the ApiVersions answer: every API served, sorted by key.
func apiVersionKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for k, a := range apis {
		v := kmsg.NewApiVersionsResponseApiKey()
		v.ApiKey, v.MinVersion, v.MaxVersion = k, a.min, a.max
		keys = append(keys, v)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}

func handleApiVersions(b *Broker, r *request, req *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiVersionKeys()
	return resp
}

// apiVersionsUnsupported answers an ApiVersions request newer than we speak
// the way Kafka does (KIP-511): version 0, UNSUPPORTED_VERSION, and our
// ApiVersions range, so the client can retry at a version we know.
func apiVersionsUnsupported() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	a := apis[kmsg.ApiVersions.Int16()]
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = kmsg.ApiVersions.Int16(), a.min, a.max
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	return resp
}
