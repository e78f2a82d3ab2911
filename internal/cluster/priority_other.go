//go:build !linux

package cluster

import "errors"

func lowerThreadPriority() (restore func() error, err error) {
	return func() error { return nil }, errors.New("thread priorities are set on Linux only")
}
