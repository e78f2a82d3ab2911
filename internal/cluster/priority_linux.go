package cluster

import "syscall"

// lowerThreadPriority gives the calling OS thread the lowest CPU priority
// (nice 19) and the lowest best-effort I/O priority, which the kernel's
// schedulers honour per thread.
func lowerThreadPriority() error {
	tid := syscall.Gettid()
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, 19); err != nil {
		return err
	}
	const ioprioWhoProcess, ioprioClassBestEffort, ioprioClassShift, lowest = 1, 2, 13, 7
	if _, _, errno := syscall.Syscall(syscall.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassBestEffort<<ioprioClassShift|lowest); errno != 0 {
		return errno
	}
	return nil
}
