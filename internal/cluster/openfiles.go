package cluster

import (
	"fmt"
	"os"
	"syscall"
)

// Every partition keeps its active segment open, so creating partitions
// takes open files, and a process out of them can accept no connection and
// roll no segment: one CreateTopics of many partitions would take the
// broker down for everyone. Creating partitions is refused while it would
// leave fewer than openFilesReserve of the process's limit free.

// openFilesReserve is how many open files creating partitions leaves free:
// a tenth of the limit, at least 1,024, for connections, segment rolls and
// reads of older segments.
func openFilesReserve(limit int) int { return max(1024, limit/10) }

// checkOpenFiles refuses adding partitions that would eat into the reserve.
// Where the limit or the open files cannot be read it lets them through.
func checkOpenFiles(adding int) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return nil
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	limit, open := int(rl.Cur), len(fds)
	reserve := openFilesReserve(limit)
	if open+adding <= limit-reserve {
		return nil
	}
	return fmt.Errorf("%w: %d more partitions need as many open files, and the broker has %d of its limit of %d open and keeps %d free for connections and segments; raise the limit (ulimit -n, LimitNOFILE= for systemd, --ulimit nofile= for Docker) or create fewer partitions",
		ErrInvalidPartitions, adding, open, limit, reserve)
}
