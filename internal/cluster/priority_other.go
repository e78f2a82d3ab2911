//go:build !linux

package cluster

import "errors"

func lowerThreadPriority() error {
	return errors.New("thread priorities are set on Linux only")
}
