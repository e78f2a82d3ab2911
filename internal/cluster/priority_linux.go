package cluster

import (
	"errors"
	"syscall"
)

// lowerThreadPriority gives the calling OS thread the lowest CPU (nice 19)
// and best-effort I/O priority. restore puts back what it changed; it
// fails where raising a priority again is not allowed (not root, no
// RLIMIT_NICE room), and then the thread must end with its goroutine.
func lowerThreadPriority() (restore func() error, err error) {
	tid := syscall.Gettid()
	const ioprioWhoProcess, ioprioClassBestEffort, ioprioClassShift, lowest = 1, 2, 13, 7
	// The raw getpriority answers 20 - nice.
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err != nil {
		return func() error { return nil }, err
	}
	oldNice := 20 - raw
	oldIO, _, errno := syscall.Syscall(syscall.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(tid), 0)
	if errno != 0 {
		return func() error { return nil }, errno
	}
	restore = func() error {
		var errs []error
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, oldNice); err != nil {
			errs = append(errs, err)
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), oldIO); errno != 0 {
			errs = append(errs, errno)
		}
		return errors.Join(errs...)
	}
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, 19); err != nil {
		return restore, err
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassBestEffort<<ioprioClassShift|lowest); errno != 0 {
		return restore, errno
	}
	return restore, nil
}
