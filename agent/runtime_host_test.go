package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/driver/container"
)

// TestStatusRestartingWhenARestartIsPending: a container whose init
// exited and whose supervisor has a restart pending shows as docker
// inspect shows it, status restarting, and not exited, which ps would
// contradict with "Restarting (0)".
func TestStatusRestartingWhenARestartIsPending(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "containers"), 0o700); err != nil {
		t.Fatal(err)
	}
	record := map[string]any{"format": 1, "name": "flaky", "restart_count": 2, "pending": map[string]any{"at": time.Now().Add(time.Second)}}
	data, _ := json.Marshal(record)
	if err := os.WriteFile(filepath.Join(dir, "containers", "flaky.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	r := &HostRuntime{h: &Host{superviseDir: dir}}
	c := r.describe(container.Info{Name: "flaky", Status: container.StatusExited, ExitCode: 0})
	if c.Status != StatusRestarting || !c.Restarting || c.RestartCount != 2 {
		t.Errorf("pending restart: status %q, restarting %v, count %d", c.Status, c.Restarting, c.RestartCount)
	}
	// Without a pending restart, or running, the driver's status stands.
	for _, in := range []container.Info{{Name: "calm", Status: container.StatusExited}, {Name: "flaky", Status: container.StatusRunning}} {
		if c := r.describe(in); c.Status != in.Status || c.Restarting {
			t.Errorf("%s %s: status %q, restarting %v", in.Name, in.Status, c.Status, c.Restarting)
		}
	}
}
