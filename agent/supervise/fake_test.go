package supervise

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/resource"
)

// fakeRuntime is a host of containers in memory, whose exits the test
// decides.
type fakeRuntime struct {
	mu     sync.Mutex
	ctrs   map[string]*fakeContainer
	starts []string // names, in the order Start started them
	pid    int
	// startedAgo backdates the runs Start makes, to play long runs.
	startedAgo time.Duration
	// beforeStart, if set, runs as a start begins (after the
	// supervisor's last look).
	beforeStart func(name string)
	// exec answers health checks; nil succeeds.
	exec func(name string, args []string) (int, error)
}

type fakeContainer struct {
	info   container.Info
	exited chan struct{}
}

var _ Runtime = (*fakeRuntime)(nil)

func newFake() *fakeRuntime { return &fakeRuntime{ctrs: map[string]*fakeContainer{}, pid: 100} }

// add makes a running container.
func (f *fakeRuntime) add(name, restart string, hc *resource.HealthcheckSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pid++
	now := time.Now().UTC()
	f.ctrs[name] = &fakeContainer{
		info: container.Info{
			ID: name, Name: name, Owner: "demo/container." + name, Created: now, Status: container.StatusRunning,
			Pid: f.pid, StartedAt: now, Monitored: true, Restart: restart, Healthcheck: hc,
		},
		exited: make(chan struct{}),
	}
}

// exit ends the container's init now with code.
func (f *fakeRuntime) exit(name string, code int, byUser bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.ctrs[name]
	c.info.Status, c.info.ExitCode, c.info.Pid, c.info.Monitored = container.StatusExited, code, 0, false
	c.info.FinishedAt = time.Now().UTC()
	c.info.StoppedByUser = c.info.StoppedByUser || byUser
	close(c.exited)
}

// stopExited marks an exited container stopped by a person, as berth
// stop of an exited container does.
func (f *fakeRuntime) stopExited(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctrs[name].info.StoppedByUser = true
}

// remove deletes the container, killing its init if it runs (rm -f).
func (f *fakeRuntime) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.ctrs[name]; c != nil && c.info.Status == container.StatusRunning {
		close(c.exited)
	}
	delete(f.ctrs, name)
}

func (f *fakeRuntime) startLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.starts...)
}

func (f *fakeRuntime) List(ctx context.Context) ([]container.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []container.Info
	for _, c := range f.ctrs {
		out = append(out, c.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeRuntime) Inspect(ctx context.Context, name string) (container.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ctrs[name]
	if !ok {
		return container.Info{}, resource.Errorf(resource.ErrNotFound, "no container %s", name)
	}
	return c.info, nil
}

func (f *fakeRuntime) Start(ctx context.Context, name string) error {
	return f.start(name, false)
}

func (f *fakeRuntime) StartUnlessStoppedByUser(ctx context.Context, name string) error {
	return f.start(name, true)
}

func (f *fakeRuntime) start(name string, unlessStoppedByUser bool) error {
	f.mu.Lock()
	hook := f.beforeStart
	f.mu.Unlock()
	if hook != nil {
		hook(name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ctrs[name]
	switch {
	case !ok:
		return resource.Errorf(resource.ErrNotFound, "no container %s", name)
	case c.info.Status == container.StatusRunning:
		return resource.Errorf(resource.ErrConflict, "container %s is already running", name)
	case unlessStoppedByUser && c.info.StoppedByUser:
		return fmt.Errorf("container %s: %w", name, container.ErrStoppedByUser)
	}
	f.pid++
	// Distinct start times even on a coarse clock.
	start := time.Now().UTC().Add(-f.startedAgo)
	if f.startedAgo == 0 && !start.After(c.info.FinishedAt) {
		start = c.info.FinishedAt.Add(time.Microsecond)
	}
	c.info.Status, c.info.Pid, c.info.StartedAt, c.info.FinishedAt, c.info.Monitored = container.StatusRunning, f.pid, start, time.Time{}, true
	c.info.StoppedByUser = false
	c.exited = make(chan struct{})
	f.starts = append(f.starts, name)
	return nil
}

func (f *fakeRuntime) Remove(ctx context.Context, name string, force bool) (container.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ctrs[name]
	switch {
	case !ok:
		return container.Info{}, resource.Errorf(resource.ErrNotFound, "no container %s", name)
	case c.info.Status == container.StatusRunning && !force:
		return c.info, resource.Errorf(resource.ErrConflict, "container %s is running", name)
	}
	delete(f.ctrs, name)
	return c.info, nil
}

func (f *fakeRuntime) Exited(id string) (<-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ctrs[id]
	if !ok {
		return nil, fmt.Errorf("no container %s", id)
	}
	return c.exited, nil
}

func (f *fakeRuntime) Exec(ctx context.Context, name string, o container.ExecOptions) (int, error) {
	f.mu.Lock()
	c, ok := f.ctrs[name]
	running := ok && c.info.Status == container.StatusRunning
	exec := f.exec
	f.mu.Unlock()
	if !running {
		return -1, resource.Errorf(resource.ErrConflict, "container %s is not running", name)
	}
	if exec == nil {
		return 0, nil
	}
	return exec(name, o.Args)
}

// started runs a supervisor over rt in dir until the test ends (or stop
// is called) and returns it with the events it emits from now on.
func started(t *testing.T, rt Runtime, cfg Config) (s *Supervisor, events *eventStream, stop func()) {
	t.Helper()
	if cfg.ScanInterval == 0 {
		cfg.ScanInterval = 20 * time.Millisecond
	}
	if cfg.DriftInterval == 0 {
		cfg.DriftInterval = 20 * time.Millisecond
	}
	s, err := New(rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch, cancelSub := s.Subscribe(time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			cancelSub()
			s.Close()
		})
	}
	t.Cleanup(stop)
	return s, &eventStream{ch: ch}, stop
}

// eventStream reads a subscription; the events a test did not ask for
// yet wait for it, so that tests can follow several containers at once.
type eventStream struct {
	ch      <-chan Event
	pending []Event
}

// take returns the first event, pending or new, that f accepts, waiting
// up to d for it.
func (s *eventStream) take(f func(Event) bool, d time.Duration) (Event, bool) {
	for i, e := range s.pending {
		if f(e) {
			s.pending = append(s.pending[:i:i], s.pending[i+1:]...)
			return e, true
		}
	}
	deadline := time.After(d)
	for {
		select {
		case e, ok := <-s.ch:
			if !ok {
				return Event{}, false
			}
			if f(e) {
				return e, true
			}
			s.pending = append(s.pending, e)
		case <-deadline:
			return Event{}, false
		}
	}
}

// next returns the first event of container name of type typ that match
// accepts (nil: any), and fails after 10 s.
func next(t *testing.T, events *eventStream, name string, typ EventType, match func(Event) bool) Event {
	t.Helper()
	e, ok := events.take(func(e Event) bool {
		return e.Container == name && e.Type == typ && (match == nil || match(e))
	}, 10*time.Second)
	if !ok {
		t.Fatalf("no %s event for %s within 10s; other events: %+v", typ, name, events.pending)
	}
	return e
}

// none checks that no event of type typ for name comes within d (or is
// pending).
func none(t *testing.T, events *eventStream, name string, typ EventType, d time.Duration) {
	t.Helper()
	if e, ok := events.take(func(e Event) bool { return e.Container == name && e.Type == typ }, d); ok {
		t.Fatalf("unexpected %s event: %+v", typ, e)
	}
}

// eventually retries cond until it holds, failing after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watching waits until the supervisor has looked at each container.
func watching(t *testing.T, s *Supervisor, names ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("the supervisor watches %v", names), func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, n := range names {
			if w := s.watches[n]; w == nil || !w.seen || w.first {
				return false
			}
		}
		return true
	})
}

// settled waits until the supervisor is done with the container as rt
// shows it now: it looked at this state, acted on it, and waits with no
// restart due. Only then does the absence of an event tell something.
func settled(t *testing.T, s *Supervisor, rt Runtime, name string) {
	t.Helper()
	eventually(t, "the supervisor is done with "+name, func() bool {
		in, err := rt.Inspect(context.Background(), name)
		if err != nil {
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		w := s.watches[name]
		return w != nil && w.idle && w.seen && sameLook(w.last, in) && w.rec.Pending == nil
	})
}
