package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWriteLockInfo: the info is written, and a failure to write it is
// an error, not ignored.
func TestWriteLockInfo(t *testing.T) {
	path := filepath.Join(t.TempDir(), lockName)
	if err := os.WriteFile(path, []byte("a longer leftover from an earlier agent, to be replaced\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := lockInfo{PID: 42, Socket: "/run/berth.sock", Started: time.Unix(1700000000, 0).UTC()}
	if err := writeLockInfo(f, want); err != nil {
		t.Fatalf("writeLockInfo: %v", err)
	}
	if got := readLockInfo(path); got != want {
		t.Errorf("read back %+v, want %+v", got, want)
	}

	ro, err := os.Open(path) // a descriptor that cannot be written
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := writeLockInfo(ro, want); err == nil {
		t.Error("writeLockInfo on a read-only descriptor returned no error")
	}
}
