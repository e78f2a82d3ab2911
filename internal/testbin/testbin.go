// Package testbin builds the creek binary for test packages that run it as
// a process (test/e2e, test/stores, test/cluster), once per test binary.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles cmd/creek into a new temporary folder named after the
// test package and returns the binary's path and a function that removes
// the folder. A build that fails ends the test binary with its output.
func Build(pkg string) (bin string, remove func()) {
	dir, err := os.MkdirTemp("", "creek-"+pkg+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "building creek:", err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "creek")
	build := exec.Command("go", "build", "-o", bin, "github.com/creek-pipeline/creek/cmd/creek")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "building creek:", err)
		os.Exit(1)
	}
	return bin, func() { os.RemoveAll(dir) }
}
