package broker

import (
	"encoding/json"
	"path/filepath"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/admin"
	"github.com/creek-pipeline/creek/internal/cluster"
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

// handleDescribeLogDirs reports the data dir, its disk space and the size of
// every partition (Topics nil: all of them).
func handleDescribeLogDirs(b *Broker, r *request, req *kmsg.DescribeLogDirsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	// creek's own tools ask for the cleaner's state with a tag of their own.
	withCleaner := false
	req.UnknownTags.Each(func(tag uint32, _ []byte) { withCleaner = withCleaner || tag == admin.CleanerStatusTag })
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir, _ = filepath.Abs(b.cluster.DataDir())
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir.Dir, &fs); err == nil {
		dir.TotalBytes = int64(fs.Blocks) * fs.Bsize
		dir.UsableBytes = int64(fs.Bavail) * fs.Bsize
	}
	// Each partition is described once however often it is asked for, as in
	// Kafka: a topic of 10,000 partitions listed 100,000 times must not
	// become 10^9 answers.
	type topicPartition struct {
		topic     string
		partition int32
	}
	seen := map[topicPartition]bool{}
	index := map[string]int{}
	add := func(t *cluster.Topic, p int32) {
		l := t.Partition(p)
		if l == nil || seen[topicPartition{t.Name(), p}] {
			return
		}
		seen[topicPartition{t.Name(), p}] = true
		i, ok := index[t.Name()]
		if !ok {
			i = len(dir.Topics)
			index[t.Name()] = i
			st := kmsg.NewDescribeLogDirsResponseDirTopic()
			st.Topic = t.Name()
			dir.Topics = append(dir.Topics, st)
		}
		sp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		sp.Partition, sp.Size = p, l.Size()
		if withCleaner && l.Compacted() {
			if st, err := json.Marshal(l.CleanerStatus()); err == nil {
				sp.UnknownTags.Set(admin.CleanerStatusTag, st)
			}
		}
		dir.Topics[i].Partitions = append(dir.Topics[i].Partitions, sp)
	}
	if req.Topics == nil { // every partition of every topic
		for _, t := range b.cluster.Topics() {
			for p := int32(0); p < t.NumPartitions(); p++ {
				add(t, p)
			}
		}
	}
	for _, rt := range req.Topics {
		if t, ok := b.cluster.Topic(rt.Topic); ok {
			for _, p := range rt.Partitions {
				add(t, p)
			}
		}
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return resp
}
