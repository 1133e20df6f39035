package supervise

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/driver/volume"
	"github.com/seed-e88ffcd2/berth/internal/testutil"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// The integration tests run the supervisor over the real container
// driver: busybox containers under their monitors, no networks.

// See driver/container's tests: libcontainer's mount-source goroutine
// must never run on the main thread.
func init() { runtime.LockOSThread() }

const testCgroupParent = "/berth-test-supervise"

func TestMain(m *testing.M) {
	container.Init()
	code := m.Run()
	for _, d := range cgroupDirs() {
		_ = os.Remove(d)
	}
	os.Exit(code)
}

func cgroupDirs() []string {
	v1, _ := filepath.Glob("/sys/fs/cgroup/*" + testCgroupParent)
	v2, _ := filepath.Glob("/sys/fs/cgroup" + testCgroupParent)
	return append(v1, v2...)
}

type images struct{ layer string }

func (i images) Resolve(_ context.Context, ref string) (*driver.ImageInfo, error) {
	return &driver.ImageInfo{Ref: ref, ID: "sha256:test", Layers: []string{i.layer},
		Config: driver.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}}, nil
}

// noNetworks knows only the "none" network.
type noNetworks struct{}

func (noNetworks) Mode(_ context.Context, name string) (string, error) {
	return "", fmt.Errorf("network %s: %w", name, resource.ErrNotFound)
}
func (noNetworks) Attach(context.Context, driver.Attachment) (driver.AttachResult, error) {
	return driver.AttachResult{}, errors.New("no networks")
}
func (noNetworks) Detach(context.Context, driver.Attachment) error { return nil }

type host struct {
	d   *container.Driver
	dir string // the supervisor's
}

func newHost(t *testing.T) *host {
	t.Helper()
	testutil.RequireRoot(t)
	root := t.TempDir()
	layer := testutil.BusyboxRootfs(t)
	if err := os.Chmod(layer, 0o755); err != nil {
		t.Fatal(err)
	}
	vols, err := volume.New(volume.Config{Root: filepath.Join(root, "volumes")})
	if err != nil {
		t.Fatal(err)
	}
	d, err := container.New(container.Config{
		StateDir: filepath.Join(root, "containers"), RunDir: filepath.Join(root, "run"),
		CgroupParent: testCgroupParent, Monitor: testutil.Monitor(t), LogMaxSize: 1 << 20, LogMaxFiles: 2,
	}, images{layer}, noNetworks{}, vols)
	if err != nil {
		t.Fatal(err)
	}
	return &host{d: d, dir: filepath.Join(root, "supervise")}
}

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// object is a value of schema s with defaults filled in and set on top.
func object(s *resource.Schema, set map[string]cty.Value) cty.Value {
	attrs := map[string]cty.Value{}
	for name, at := range s.ImpliedType().AttributeTypes() {
		attrs[name] = cty.NullVal(at)
	}
	for name, a := range s.Attributes {
		if a.Default != cty.NilVal {
			attrs[name] = a.Default
		}
	}
	for k, v := range set {
		attrs[k] = v
	}
	return cty.ObjectVal(attrs)
}

// create makes a container named after prefix running command in the
// project "demo", and deletes it when the test ends.
func (h *host) create(t *testing.T, prefix, restart string, command []string, set map[string]cty.Value) string {
	t.Helper()
	name := uniqueName(prefix)
	args := make([]cty.Value, len(command))
	for i, a := range command {
		args[i] = cty.StringVal(a)
	}
	attrs := map[string]cty.Value{
		"name": cty.StringVal(name), "image": cty.StringVal("test/busybox:1"), "command": cty.ListVal(args),
		"restart": cty.StringVal(restart), "stop_timeout": cty.StringVal("300ms"),
	}
	for k, v := range set {
		attrs[k] = v
	}
	addr := resource.Addr{Kind: resource.KindContainer, Name: name}
	ctx := resource.WithOwner(context.Background(), resource.Owner{Project: "demo", Addr: addr})
	got, err := h.d.Create(ctx, addr, object(resource.ContainerSchema, attrs))
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := h.d.Delete(ctx, addr, got); err != nil {
			t.Errorf("cleanup: delete %s: %v", name, err)
		}
	})
	return name
}

func (h *host) status(t *testing.T, name string) container.Info {
	t.Helper()
	in, err := h.d.Inspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func (h *host) waitStatus(t *testing.T, name, status string) container.Info {
	t.Helper()
	var in container.Info
	eventually(t, name+" is "+status, func() bool { in = h.status(t, name); return in.Status == status })
	return in
}

func (h *host) exec(t *testing.T, name string, args ...string) {
	t.Helper()
	if code, err := h.d.Exec(context.Background(), name, container.ExecOptions{Args: args}); err != nil || code != 0 {
		t.Fatalf("exec %q in %s: %d, %v", args, name, code, err)
	}
}

func TestRestartPoliciesWithRealContainers(t *testing.T) {
	h := newHost(t)
	no := h.create(t, "no", "no", []string{"sh", "-c", "sleep 0.2; exit 1"}, nil)
	limited := h.create(t, "limit", "on-failure:2", []string{"sh", "-c", "sleep 0.2; exit 3"}, nil)
	clean := h.create(t, "clean", "on-failure", []string{"sh", "-c", "sleep 0.2; exit 0"}, nil)
	always := h.create(t, "always", "always", []string{"sh", "-c", "sleep 0.2; exit 0"}, nil)
	_, events, _ := started(t, h.d, Config{Dir: h.dir})

	// no: reported, left stopped, and drift for the next plan.
	if d := next(t, events, no, EventDie, nil); d.ExitCode != 1 || d.Owner != "demo/container."+no {
		t.Errorf("die of %s = %+v", no, d)
	}
	next(t, events, no, EventDrift, nil)

	// on-failure with code 0: not a failure.
	if d := next(t, events, clean, EventDie, nil); d.ExitCode != 0 {
		t.Errorf("die of %s = %+v", clean, d)
	}

	// on-failure:2: two restarts, each after a longer back-off.
	var gaps []time.Duration
	for i := 1; i <= 3; i++ {
		die := next(t, events, limited, EventDie, nil)
		if die.ExitCode != 3 {
			t.Errorf("die %d of %s = %+v", i, limited, die)
		}
		if i == 3 {
			break
		}
		r := next(t, events, limited, EventRestart, nil)
		if r.RestartCount != i {
			t.Errorf("restart %d of %s = %+v", i, limited, r)
		}
		gaps = append(gaps, r.Time.Sub(die.Time))
	}
	if gaps[1] <= gaps[0] {
		t.Errorf("back-off did not grow: gaps between exit and restart %v", gaps)
	}
	d := next(t, events, limited, EventDrift, nil)
	if !strings.Contains(d.Message, "restarted 2 times") {
		t.Errorf("drift = %+v", d)
	}
	if in := h.status(t, limited); in.Status != container.StatusExited || in.ExitCode != 3 {
		t.Errorf("%s after its limit: %+v", limited, in)
	}

	// always: restarted whatever the code, the count growing.
	for i := 1; i <= 3; i++ {
		if r := next(t, events, always, EventRestart, nil); r.RestartCount != i {
			t.Errorf("restart %d of %s = %+v", i, always, r)
		}
	}
	if in := h.status(t, clean); in.Status != container.StatusExited {
		t.Errorf("%s was restarted: %+v", clean, in)
	}
	if in := h.status(t, no); in.Status != container.StatusExited {
		t.Errorf("%s was restarted: %+v", no, in)
	}
}

func TestStopByAPersonEscalatesAndIsRespected(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	// sleep as PID 1 ignores SIGTERM: the stop ends in SIGKILL.
	always := h.create(t, "always", "always", []string{"sleep", "1000"}, nil)
	unless := h.create(t, "unless", "unless-stopped", []string{"sleep", "1000"}, nil)
	s, events, stop := started(t, h.d, Config{Dir: h.dir})
	watching(t, s, always, unless)

	for _, name := range []string{always, unless} {
		begun := time.Now()
		if err := h.d.Stop(ctx, name, -1, true); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(begun); took < 300*time.Millisecond {
			t.Errorf("stop of %s took %v: it did not wait for the stop timeout before SIGKILL", name, took)
		}
		d := next(t, events, name, EventDie, nil)
		if d.ExitCode != 137 || d.Signal != "SIGKILL" {
			t.Errorf("die of %s = %+v, want 137 (SIGKILL)", name, d)
		}
	}
	settled(t, s, h.d, always)
	none(t, events, always, EventRestart, 0)
	for _, name := range []string{always, unless} {
		if in := h.status(t, name); in.Status != container.StatusExited || !in.StoppedByUser {
			t.Errorf("%s after a person's stop: %+v", name, in)
		}
	}
	stop()

	// The agent restarts: "always" comes back, "unless-stopped" does not.
	s, events, _ = started(t, h.d, Config{Dir: h.dir})
	next(t, events, always, EventRestart, nil)
	h.waitStatus(t, always, container.StatusRunning)
	settled(t, s, h.d, unless)
	none(t, events, unless, EventRestart, 0)
	if in := h.status(t, unless); in.Status != container.StatusExited {
		t.Errorf("%s came back: %+v", unless, in)
	}
	// Nor are their exits reported twice.
	none(t, events, unless, EventDie, 0)
}

func TestHealthTransitionsWithRealContainers(t *testing.T) {
	h := newHost(t)
	hc := object(resource.ContainerSchema.Blocks["healthcheck"].Schema, map[string]cty.Value{
		"shell": cty.StringVal("test -f /tmp/ok"), "interval": cty.StringVal("100ms"),
		"timeout": cty.StringVal("5s"), "retries": cty.NumberIntVal(2), "start_period": cty.StringVal("1h"),
	})
	name := h.create(t, "health", "no", []string{"sleep", "1000"}, map[string]cty.Value{"healthcheck": hc})
	s, events, _ := started(t, h.d, Config{Dir: h.dir})
	next(t, events, name, EventHealthStatus, func(e Event) bool { return e.Health == HealthStarting })
	// Failures in the start period do not count.
	eventually(t, "two failed checks", func() bool { h, _ := s.Health(name); return len(h.Log) >= 2 })
	if got, _ := s.Health(name); got.Status != HealthStarting || got.Log[0].ExitCode != 1 {
		t.Errorf("health in the start period = %+v", got)
	}

	h.exec(t, name, "touch", "/tmp/ok")
	next(t, events, name, EventHealthStatus, func(e Event) bool { return e.Health == HealthHealthy })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitHealthy(ctx, name); err != nil {
		t.Errorf("WaitHealthy = %v", err)
	}
	h.exec(t, name, "rm", "/tmp/ok")
	next(t, events, name, EventHealthStatus, func(e Event) bool { return e.Health == HealthUnhealthy })
	got, _ := s.Health(name)
	if got.FailingStreak < 2 {
		t.Errorf("unhealthy = %+v", got)
	}
	h.exec(t, name, "touch", "/tmp/ok")
	next(t, events, name, EventHealthStatus, func(e Event) bool { return e.Health == HealthHealthy })

	// Readable without the agent.
	st, err := ReadState(h.dir, name)
	if err != nil || st.Health == nil || st.Health.Status != HealthHealthy {
		t.Errorf("ReadState = %+v, %v", st, err)
	}
}

func TestOOMIsReported(t *testing.T) {
	h := newHost(t)
	// tail keeps the last lines of a file without newlines: all of it.
	name := h.create(t, "oom", "no", []string{"tail", "/dev/zero"}, map[string]cty.Value{
		"resources": object(resource.ContainerSchema.Blocks["resources"].Schema, map[string]cty.Value{"memory": cty.StringVal("48M")}),
	})
	_, events, _ := started(t, h.d, Config{Dir: h.dir})
	next(t, events, name, EventOOM, nil)
	d := next(t, events, name, EventDie, nil)
	if d.ExitCode != 137 || !strings.Contains(d.Message, "out of memory") {
		t.Errorf("die = %+v", d)
	}
	if in := h.status(t, name); !in.OOMKilled || in.ExitCode != 137 {
		t.Errorf("inspect = %+v, want OOM killed, 137", in)
	}
}

func TestReadoptionWithRealContainers(t *testing.T) {
	h := newHost(t)
	// Exits with 3 once told to (a file in its root, which a start again
	// keeps).
	failing := h.create(t, "fail", "on-failure:1", []string{"sh", "-c", "while [ ! -f /tmp/go ]; do sleep 0.05; done; exit 3"}, nil)
	steady := h.create(t, "steady", "always", []string{"sleep", "1000"}, nil)
	oneshot := h.create(t, "oneshot", "no", []string{"true"}, nil)
	s, events, stop := started(t, h.d, Config{Dir: h.dir})
	watching(t, s, failing, steady, oneshot)
	next(t, events, oneshot, EventDie, nil)
	stop() // the agent dies

	steadyPid := h.status(t, steady).Pid
	h.exec(t, failing, "touch", "/tmp/go")
	h.waitStatus(t, failing, container.StatusExited)

	s, events, _ = started(t, h.d, Config{Dir: h.dir})
	d := next(t, events, failing, EventDie, nil)
	if d.ExitCode != 3 || !strings.Contains(d.Message, "while no agent ran") {
		t.Errorf("die reported after re-adoption = %+v", d)
	}
	if r := next(t, events, failing, EventRestart, nil); r.RestartCount != 1 {
		t.Errorf("restart = %+v", r)
	}
	// It fails again at once; on-failure:1 is spent.
	next(t, events, failing, EventDie, nil)
	next(t, events, failing, EventDrift, nil)
	settled(t, s, h.d, oneshot)
	none(t, events, oneshot, EventDie, 0)
	if in := h.status(t, steady); in.Status != container.StatusRunning || in.Pid != steadyPid {
		t.Errorf("%s after re-adoption: %+v (pid was %d)", steady, in, steadyPid)
	}
	if _, ok := s.State(steady); !ok {
		t.Errorf("%s is not watched", steady)
	}
}

// A health check that leaves a process behind holding its output returns
// when the check ends, and one that runs too long when its timeout
// passes: neither waits for the process left behind.
func TestHealthCheckLeavingAProcessBehind(t *testing.T) {
	h := newHost(t)
	name := h.create(t, "bg", "no", []string{"sleep", "1000"}, nil)
	h.waitStatus(t, name, container.StatusRunning)
	s, err := New(h.d, Config{Dir: h.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	start := time.Now()
	p, ok := s.probe(ctx, name, []string{"sh", "-c", "sleep 8 & echo hi"}, 5*time.Second)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a check that ended at once took %v: it waited for the process it left", took)
	}
	if !ok || p.ExitCode != 0 || p.Output != "hi\n" {
		t.Errorf("probe = %+v, %v; want exit 0, output hi", p, ok)
	}

	start = time.Now()
	p, ok = s.probe(ctx, name, []string{"sh", "-c", "sleep 8 & echo hi; sleep 9"}, time.Second)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a check with a 1s timeout took %v", took)
	}
	if !ok || p.ExitCode != -1 || !strings.Contains(p.Output, "timed out") {
		t.Errorf("probe = %+v, %v; want a time-out", p, ok)
	}
}
