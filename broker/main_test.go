package broker

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// coordinator, timer and connection a test starts must be stopped.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
