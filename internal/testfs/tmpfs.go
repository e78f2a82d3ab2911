// Package testfs gives tests a real small file system to fill: a tmpfs
// mounted on a temporary folder, which the test can grow while it is in
// use. A full disk is then a real ENOSPC from the kernel, not a simulation.
// Mounting needs root (CI runs as root); elsewhere the test is skipped with
// one line that says why.
package testfs

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Tmpfs is a mounted tmpfs.
type Tmpfs struct {
	Dir string
	t   testing.TB
}

// Mount mounts a tmpfs of size bytes on a new temporary folder and unmounts
// it when the test ends. It skips the test when mounting is not possible.
func Mount(t testing.TB, size int64) *Tmpfs {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("SKIP: this test needs a real full disk, a tmpfs it mounts itself, and mounting failed (run as root): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return &Tmpfs{Dir: dir, t: t}
}

// Resize changes the size of the mounted file system while files on it are
// open (growing it is what an operator does to a full disk).
func (fs *Tmpfs) Resize(size int64) {
	fs.t.Helper()
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), fs.Dir).CombinedOutput(); err != nil {
		fs.t.Fatalf("remount %s with size %d: %v: %s", fs.Dir, size, err, out)
	}
}

// Fill writes a file of zeros until the file system is full and returns its
// path; removing it gives the space back.
func (fs *Tmpfs) Fill() string {
	fs.t.Helper()
	p := fs.Dir + "/filler"
	f, err := os.Create(p)
	if err != nil {
		fs.t.Fatalf("create filler: %v", err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			return p
		}
	}
}
