package broker

import (
	"encoding/json"
	"path/filepath"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// allClusterOperations: ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS,
// ALTER_CONFIGS, IDEMPOTENT_WRITE, CREATE, DESCRIBE_TOKENS (no ACLs: all allowed).
const allClusterOperations = 1<<4 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12 | 1<<13

const endpointTypeBrokers = 1

func handleDescribeCluster(b *Broker, r *request, req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = endpointTypeBrokers
	if req.Version >= 1 && req.EndpointType != endpointTypeBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = stringPtr("creek has no separate controllers; ask for brokers (endpoint type 1)")
		return resp
	}
	resp.ClusterID = b.cluster.ID()
	resp.ControllerID = b.nodeID
	host, port := b.advertisedAddr(r.conn)
	br := kmsg.NewDescribeClusterResponseBroker()
	br.NodeID, br.Host, br.Port = b.nodeID, host, port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{br}
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = allClusterOperations
	}
	return resp
}

// CleanerStatusTag is the tagged field (KIP-482) by which creek's own tools
// ask for the log cleaner's state: a DescribeLogDirs request (v2 and
// later) carrying it gets, in each partition of a compacted topic, a JSON
// storage.CleanerStatus under the same tag. Clients that do not send it see
// Kafka's answer unchanged.
const CleanerStatusTag = 25458

// handleDescribeLogDirs reports the data dir, its disk space and the size of
// every partition (Topics nil: all of them).
func handleDescribeLogDirs(b *Broker, r *request, req *kmsg.DescribeLogDirsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	withCleaner := false
	req.UnknownTags.Each(func(tag uint32, _ []byte) { withCleaner = withCleaner || tag == CleanerStatusTag })
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir, _ = filepath.Abs(b.cluster.DataDir())
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir.Dir, &fs); err == nil {
		dir.TotalBytes = int64(fs.Blocks) * fs.Bsize
		dir.UsableBytes = int64(fs.Bavail) * fs.Bsize
	}
	addTopic := func(name string, partitions []int32) {
		t, ok := b.cluster.Topic(name)
		if !ok {
			return
		}
		st := kmsg.NewDescribeLogDirsResponseDirTopic()
		st.Topic = name
		if partitions == nil {
			for p := int32(0); p < t.NumPartitions(); p++ {
				partitions = append(partitions, p)
			}
		}
		for _, p := range partitions {
			if l := t.Partition(p); l != nil {
				sp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
				sp.Partition, sp.Size = p, l.Size()
				if withCleaner && l.Compacted() {
					if st, err := json.Marshal(l.CleanerStatus()); err == nil {
						sp.UnknownTags.Set(CleanerStatusTag, st)
					}
				}
				st.Partitions = append(st.Partitions, sp)
			}
		}
		dir.Topics = append(dir.Topics, st)
	}
	if req.Topics == nil {
		for _, t := range b.cluster.Topics() {
			addTopic(t.Name(), nil)
		}
	} else {
		for _, rt := range req.Topics {
			addTopic(rt.Topic, rt.Partitions)
		}
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return resp
}
