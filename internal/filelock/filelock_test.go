package filelock

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestLockExcludesAndSurvivesRemoval: holders never overlap, also when each
// removes the lock file before releasing it.
func TestLockExcludesAndSurvivesRemoval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locks", "name.lock")
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				f, err := Lock(path)
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				inside.Add(-1)
				os.Remove(path)
				f.Close()
			}
		}()
	}
	wg.Wait()
	if n := overlaps.Load(); n > 0 {
		t.Errorf("%d times two holders held the lock at once", n)
	}
}
