package supervise

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/resource"
)

func TestNextBackoff(t *testing.T) {
	var got []time.Duration
	d := time.Duration(0)
	for range 12 {
		d = nextBackoff(d, time.Second)
		got = append(got, d)
	}
	want := []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond,
		25600 * time.Millisecond, 51200 * time.Millisecond, time.Minute, time.Minute,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("back-off sequence = %v, want %v", got, want)
		}
	}
	if got := nextBackoff(time.Minute, 10*time.Second); got != 100*time.Millisecond {
		t.Errorf("after a 10s run: %v, want 100ms", got)
	}
	if got := nextBackoff(400*time.Millisecond, 10*time.Second-time.Millisecond); got != 800*time.Millisecond {
		t.Errorf("after a 9.999s run: %v, want 800ms", got)
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]Policy{
		"": {Name: "no"}, "no": {Name: "no"}, "always": {Name: "always"}, "unless-stopped": {Name: "unless-stopped"},
		"on-failure": {Name: "on-failure"}, "on-failure:5": {Name: "on-failure", MaxRetries: 5}, "on-failure:x": {Name: "no"},
	} {
		if got := ParsePolicy(in); got != want {
			t.Errorf("ParsePolicy(%q) = %+v, want %+v", in, got, want)
		}
		if in != "" && in != "on-failure:x" && ParsePolicy(in).String() != in {
			t.Errorf("%q.String() = %q", in, ParsePolicy(in).String())
		}
	}
}

func TestDecide(t *testing.T) {
	for _, tt := range []struct {
		policy string
		facts  exitFacts
		want   bool
		why    string
	}{
		{"no", exitFacts{code: 1}, false, `"no"`},
		{"always", exitFacts{code: 0}, true, ""},
		{"always", exitFacts{code: 137, stoppedByUser: true}, false, "stopped by a person"},
		{"always", exitFacts{code: 137, stoppedByUser: true, agentStart: true}, true, ""},
		{"unless-stopped", exitFacts{code: 0}, true, ""},
		{"unless-stopped", exitFacts{code: 137, stoppedByUser: true, agentStart: true}, false, "stopped by a person"},
		{"on-failure", exitFacts{code: 0}, false, "code 0"},
		{"on-failure", exitFacts{code: 3, restarts: 100}, true, ""},
		{"on-failure:2", exitFacts{code: 3, restarts: 1}, true, ""},
		{"on-failure:2", exitFacts{code: 3, restarts: 2}, false, "restarted 2 times"},
		{"on-failure", exitFacts{code: 137, stoppedByUser: true, agentStart: true}, false, "stopped by a person"},
	} {
		got, why := decide(ParsePolicy(tt.policy), tt.facts)
		if got != tt.want || !strings.Contains(why, tt.why) {
			t.Errorf("decide(%s, %+v) = %v %q, want %v %q", tt.policy, tt.facts, got, why, tt.want, tt.why)
		}
	}
}

func TestOnFailureRestartsUpToItsLimit(t *testing.T) {
	rt := newFake()
	rt.add("web", "on-failure:2", nil)
	_, events, _ := started(t, rt, Config{Dir: t.TempDir()})
	for i := 1; i <= 3; i++ {
		eventually(t, "the container runs", func() bool { in, _ := rt.Inspect(context.Background(), "web"); return in.Status == "running" })
		rt.exit("web", 2, false)
		die := next(t, events, "web", EventDie, nil)
		if die.ExitCode != 2 || die.Owner != "demo/container.web" {
			t.Errorf("die = %+v", die)
		}
		if i <= 2 {
			if r := next(t, events, "web", EventRestart, nil); r.RestartCount != i {
				t.Errorf("restart %d: %+v", i, r)
			}
		}
	}
	d := next(t, events, "web", EventDrift, nil)
	if !strings.Contains(d.Message, "restarted 2 times") || !strings.Contains(d.Message, "next berth apply starts it again") {
		t.Errorf("drift = %+v", d)
	}
	if got := rt.startLog(); len(got) != 2 {
		t.Errorf("starts = %v, want 2", got)
	}
}

func TestExitCodeZeroIsNotAFailure(t *testing.T) {
	rt := newFake()
	rt.add("job", "on-failure", nil)
	rt.add("svc", "always", nil)
	s, events, _ := started(t, rt, Config{Dir: t.TempDir()})
	watching(t, s, "job", "svc")
	rt.exit("job", 0, false)
	rt.exit("svc", 0, false)
	next(t, events, "svc", EventRestart, nil)
	settled(t, s, rt, "job")
	none(t, events, "job", EventRestart, 0)
	if got := rt.startLog(); len(got) != 1 || got[0] != "svc" {
		t.Errorf("starts = %v", got)
	}
}

func TestUserStopIsRespectedAndAlwaysComesBackWithTheAgent(t *testing.T) {
	rt := newFake()
	rt.add("a", "always", nil)
	rt.add("u", "unless-stopped", nil)
	rt.add("f", "on-failure", nil)
	dir := t.TempDir()
	s, events, stop := started(t, rt, Config{Dir: dir})
	watching(t, s, "a", "u", "f")
	for _, n := range []string{"a", "u", "f"} {
		rt.exit(n, 137, true)
		next(t, events, n, EventDie, nil)
	}
	settled(t, s, rt, "a")
	none(t, events, "a", EventRestart, 0)
	stop()
	if len(rt.startLog()) != 0 {
		t.Fatalf("containers stopped by a person were restarted: %v", rt.startLog())
	}

	// A new agent: "always" comes back, the others stay stopped, and the
	// exits already reported are not reported again.
	s, events, _ = started(t, rt, Config{Dir: dir})
	r := next(t, events, "a", EventRestart, nil)
	if !strings.Contains(r.Message, "with the agent") {
		t.Errorf("restart = %+v", r)
	}
	settled(t, s, rt, "u")
	none(t, events, "u", EventRestart, 0)
	if got := rt.startLog(); len(got) != 1 || got[0] != "a" {
		t.Errorf("starts = %v, want [a]", got)
	}
}

func TestReadoption(t *testing.T) {
	rt := newFake()
	rt.add("svc", "on-failure", nil)
	rt.add("other", "no", nil)
	dir := t.TempDir()
	s, events, stop := started(t, rt, Config{Dir: dir})
	watching(t, s, "svc", "other")
	rt.exit("svc", 1, false)
	next(t, events, "svc", EventRestart, nil)
	if st, _ := s.State("svc"); st.RestartCount != 1 {
		t.Errorf("state = %+v", st)
	}
	rt.exit("other", 0, false)
	next(t, events, "other", EventDie, nil)
	stop()

	// While no agent runs, svc fails again.
	eventually(t, "svc runs", func() bool { in, _ := rt.Inspect(context.Background(), "svc"); return in.Status == "running" })
	rt.exit("svc", 3, false)

	s, events, _ = started(t, rt, Config{Dir: dir})
	die := next(t, events, "svc", EventDie, nil)
	if die.ExitCode != 3 || !strings.Contains(die.Message, "while no agent ran") {
		t.Errorf("die = %+v", die)
	}
	if r := next(t, events, "svc", EventRestart, nil); r.RestartCount != 2 {
		t.Errorf("restart after re-adoption = %+v, want count 2", r)
	}
	// The exit of other was handled by the first supervisor.
	settled(t, s, rt, "other")
	none(t, events, "other", EventDie, 0)

	// A container removed goes with its record.
	rt.remove("other")
	eventually(t, "other's record is removed", func() bool {
		_, err := ReadState(dir, "other")
		return errors.Is(err, os.ErrNotExist)
	})
	if st, err := ReadState(dir, "svc"); err != nil || st.RestartCount != 2 {
		t.Errorf("ReadState(svc) = %+v, %v", st, err)
	}
}

func TestAPersonsStartResetsTheRestartCount(t *testing.T) {
	rt := newFake()
	rt.add("web", "on-failure:1", nil)
	s, events, _ := started(t, rt, Config{Dir: t.TempDir()})
	watching(t, s, "web")
	rt.exit("web", 1, false)
	next(t, events, "web", EventRestart, nil)
	eventually(t, "web runs", func() bool { in, _ := rt.Inspect(context.Background(), "web"); return in.Status == "running" })
	rt.exit("web", 1, false)
	next(t, events, "web", EventDrift, nil) // limit reached

	// berth start: a run the supervisor did not make.
	if err := rt.Start(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	s.Poke()
	eventually(t, "the supervisor sees web run", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.watches["web"].last.Status == "running"
	})
	rt.exit("web", 1, false)
	if r := next(t, events, "web", EventRestart, nil); r.RestartCount != 1 {
		t.Errorf("restart after a person's start = %+v, want count 1", r)
	}
}

func TestBackoffGrowsBetweenRestarts(t *testing.T) {
	rt := newFake()
	rt.add("crash", "always", nil)
	dir := t.TempDir()
	s, events, _ := started(t, rt, Config{Dir: dir})
	var backoffs []time.Duration
	for range 4 {
		eventually(t, "crash runs", func() bool { in, _ := rt.Inspect(context.Background(), "crash"); return in.Status == "running" })
		rt.exit("crash", 1, false)
		next(t, events, "crash", EventDie, nil)
		s.mu.Lock()
		backoffs = append(backoffs, s.watches["crash"].rec.Backoff)
		s.mu.Unlock()
		next(t, events, "crash", EventRestart, nil)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	for i := range want {
		if backoffs[i] != want[i] {
			t.Fatalf("back-offs = %v, want %v", backoffs, want)
		}
	}
	// A run of 10 s resets it.
	rt.mu.Lock()
	rt.startedAgo = 20 * time.Second
	rt.mu.Unlock()
	for range 2 {
		eventually(t, "crash runs", func() bool { in, _ := rt.Inspect(context.Background(), "crash"); return in.Status == "running" })
		rt.exit("crash", 1, false)
		next(t, events, "crash", EventRestart, nil)
	}
	s.mu.Lock()
	b := s.watches["crash"].rec.Backoff
	s.mu.Unlock()
	if b != 100*time.Millisecond {
		t.Errorf("back-off after a long run = %v, want 100ms", b)
	}
	if st, _ := s.State("crash"); st.RestartCount != 6 {
		t.Errorf("restart count = %d, want 6", st.RestartCount)
	}
}

func TestHealthTransitions(t *testing.T) {
	rt := newFake()
	var mu sync.Mutex
	ok := false
	rt.exec = func(name string, args []string) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if strings.Join(args, " ") != "/bin/sh -c test -f /tmp/ok" {
			t.Errorf("check args = %q", args)
		}
		if ok {
			return 0, nil
		}
		return 1, nil
	}
	set := func(v bool) { mu.Lock(); ok = v; mu.Unlock() }
	hc := &resource.HealthcheckSpec{Shell: "test -f /tmp/ok", Interval: "10ms", Timeout: "1s", Retries: 3, StartPeriod: "0s"}
	rt.add("web", "no", hc)
	s, events, _ := started(t, rt, Config{Dir: t.TempDir()})
	next(t, events, "web", EventHealthStatus, func(e Event) bool { return e.Health == HealthStarting })
	if h, _ := s.Health("web"); h.Status != HealthStarting {
		t.Errorf("health = %+v", h)
	}
	// Failing checks: unhealthy after 3 in a row.
	next(t, events, "web", EventHealthStatus, func(e Event) bool { return e.Health == HealthUnhealthy })
	h, _ := s.Health("web")
	if h.FailingStreak < 3 || len(h.Log) == 0 || h.Log[len(h.Log)-1].ExitCode != 1 || len(h.Log) > probesKept {
		t.Errorf("unhealthy health = %+v", h)
	}
	set(true)
	next(t, events, "web", EventHealthStatus, func(e Event) bool { return e.Health == HealthHealthy })
	if err := s.WaitHealthy(context.Background(), "web"); err != nil {
		t.Errorf("WaitHealthy = %v", err)
	}
	set(false)
	next(t, events, "web", EventHealthStatus, func(e Event) bool { return e.Health == HealthUnhealthy })
	if err := s.WaitHealthy(context.Background(), "web"); !errors.Is(err, ErrUnhealthy) {
		t.Errorf("WaitHealthy of an unhealthy container = %v", err)
	}
	set(true)
	next(t, events, "web", EventHealthStatus, func(e Event) bool { return e.Health == HealthHealthy })
}

func TestHealthStartPeriod(t *testing.T) {
	rt := newFake()
	var mu sync.Mutex
	ok := false
	rt.exec = func(string, []string) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if ok {
			return 0, nil
		}
		return 1, nil
	}
	hc := &resource.HealthcheckSpec{Command: []string{"check"}, Interval: "10ms", Timeout: "1s", Retries: 1, StartPeriod: "1h"}
	rt.add("slow", "no", hc)
	s, events, _ := started(t, rt, Config{Dir: t.TempDir()})
	eventually(t, "several failed checks", func() bool { h, _ := s.Health("slow"); return len(h.Log) >= 3 })
	if h, _ := s.Health("slow"); h.Status != HealthStarting || h.FailingStreak != 0 {
		t.Errorf("failures in the start period counted: %+v", h)
	}
	mu.Lock()
	ok = true
	mu.Unlock()
	next(t, events, "slow", EventHealthStatus, func(e Event) bool { return e.Health == HealthHealthy })
	mu.Lock()
	ok = false
	mu.Unlock()
	// Once healthy, failures count even within the start period.
	next(t, events, "slow", EventHealthStatus, func(e Event) bool { return e.Health == HealthUnhealthy })
}

func TestHealthCheckTimeout(t *testing.T) {
	rt := newFake()
	rt.exec = func(string, []string) (int, error) { time.Sleep(200 * time.Millisecond); return 0, nil }
	hc := &resource.HealthcheckSpec{Command: []string{"check"}, Interval: "10ms", Timeout: "20ms", Retries: 1}
	rt.add("hang", "no", hc)
	// The fake ignores the context; the probe's verdict is still a
	// timeout.
	s, events, _ := started(t, rt, Config{Dir: t.TempDir()})
	next(t, events, "hang", EventHealthStatus, func(e Event) bool { return e.Health == HealthUnhealthy })
	h, _ := s.Health("hang")
	if p := h.Log[len(h.Log)-1]; p.ExitCode != -1 || !strings.Contains(p.Output, "timed out after 20ms") {
		t.Errorf("probe = %+v", p)
	}
}

func TestWaitHealthyFailsWithoutAHealthcheckOrAfterAFinalExit(t *testing.T) {
	rt := newFake()
	rt.add("plain", "no", nil)
	rt.add("job", "no", &resource.HealthcheckSpec{Command: []string{"check"}, Interval: "1h"})
	s, events, _ := started(t, rt, Config{Dir: t.TempDir()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitHealthy(ctx, "plain"); !errors.Is(err, resource.ErrInvalid) {
		t.Errorf("WaitHealthy without a healthcheck = %v", err)
	}
	rt.exit("job", 1, false)
	next(t, events, "job", EventDie, nil)
	if err := s.WaitHealthy(ctx, "job"); !errors.Is(err, ErrUnhealthy) {
		t.Errorf("WaitHealthy after a final exit = %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := s.WaitHealthy(short, "nosuch"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitHealthy of a missing container = %v", err)
	}
}

func TestDriftOfARemovedContainer(t *testing.T) {
	rt := newFake()
	rt.add("kept", "no", nil)
	var mu sync.Mutex
	recorded := map[string]string{"kept": "demo/container.kept", "gone": "demo/container.gone"}
	cfg := Config{Dir: t.TempDir(), Recorded: func(context.Context) (map[string]string, error) {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]string{}
		for k, v := range recorded {
			out[k] = v
		}
		return out, nil
	}}
	_, events, _ := started(t, rt, cfg)
	d := next(t, events, "gone", EventDrift, nil)
	if d.Owner != "demo/container.gone" || !strings.Contains(d.Message, "removed outside berth") {
		t.Errorf("drift = %+v", d)
	}
	// Reported once.
	none(t, events, "gone", EventDrift, 200*time.Millisecond)
	none(t, events, "kept", EventDrift, 0)
}

// A container removed through berth is not drift: berth rm (which tells
// the supervisor with Acted) while the state still records it, or an
// apply's delete (which drops the record right after).
func TestRemovalThroughBerthIsNotDrift(t *testing.T) {
	rt := newFake()
	var mu sync.Mutex
	recorded := map[string]string{}
	for _, n := range []string{"rmd", "applied", "outside"} {
		rt.add(n, "no", nil)
		recorded[n] = "demo/container." + n
	}
	cfg := Config{Dir: t.TempDir(), Recorded: func(context.Context) (map[string]string, error) {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]string{}
		for k, v := range recorded {
			out[k] = v
		}
		return out, nil
	}}
	s, events, _ := started(t, rt, cfg)
	watching(t, s, "rmd", "applied", "outside")

	rt.remove("rmd") // berth rm -f rmd
	s.Acted(Event{Type: EventDestroy, Container: "rmd", Owner: "demo/container.rmd"})
	rt.remove("applied") // apply: the driver's Delete, then the state's
	mu.Lock()
	delete(recorded, "applied")
	mu.Unlock()
	rt.remove("outside")

	// By the time the one removed behind berth's back is reported, the
	// others were missing as long.
	next(t, events, "outside", EventDrift, nil)
	none(t, events, "rmd", EventDrift, 100*time.Millisecond)
	none(t, events, "applied", EventDrift, 0)
}

func TestExitOfAContainerWithoutPolicyIsDrift(t *testing.T) {
	rt := newFake()
	rt.add("web", "no", nil)
	s, events, _ := started(t, rt, Config{Dir: t.TempDir()})
	watching(t, s, "web")
	rt.exit("web", 7, false)
	d := next(t, events, "web", EventDrift, nil)
	if d.ExitCode != 7 || !strings.Contains(d.Message, "next berth apply starts it again") {
		t.Errorf("drift = %+v", d)
	}
}

func TestBus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	b, err := NewBus(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	live, cancel := b.Subscribe(time.Time{})
	for i := range 5 {
		b.Emit(Event{Type: EventDie, Container: "c", ExitCode: i})
	}
	for i := range 5 {
		if e := <-live; e.ExitCode != i || e.Seq != uint64(i+1) {
			t.Errorf("live event %d = %+v", i, e)
		}
	}
	cancel()
	if _, ok := <-live; ok {
		t.Error("channel open after cancel")
	}
	if h := b.History(t0); len(h) != 3 || h[0].ExitCode != 2 {
		t.Errorf("history = %+v, want the last 3", h)
	}
	b.Close()

	// A new bus (the agent restarted) reads the log back and goes on
	// numbering.
	b, err = NewBus(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	replay, cancel := b.Subscribe(t0)
	defer cancel()
	e := b.Emit(Event{Type: EventStop, Container: "c"})
	if e.Seq != 6 {
		t.Errorf("seq after restart = %d, want 6", e.Seq)
	}
	for i := range 6 {
		if got := <-replay; got.Seq != uint64(i+1) {
			t.Fatalf("replayed event %d = %+v", i, got)
		}
	}

	// Rotation keeps one older file.
	b.maxSize = 200
	for range 10 {
		b.Emit(Event{Type: EventDie, Container: "c"})
	}
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Errorf("no rotated log: %v", err)
	}
}

func TestSlowSubscriberIsCutOff(t *testing.T) {
	b, _ := NewBus("", 10)
	ch, cancel := b.Subscribe(time.Time{})
	defer cancel()
	// Whatever the forwarder took before the reader stalled, a
	// queue of maxQueued more is left behind.
	for range 2 * maxQueued {
		b.Emit(Event{Type: EventDie})
	}
	n := 0
	for range ch {
		n++
	}
	if n < maxQueued || n >= 2*maxQueued {
		t.Errorf("a subscriber that fell behind got %d events before its channel closed", n)
	}
}

func TestCreateAndDestroyEvents(t *testing.T) {
	rt := newFake()
	rt.add("old", "no", nil)
	s, events, _ := started(t, rt, Config{Dir: t.TempDir()})
	watching(t, s, "old")
	none(t, events, "old", EventCreate, 0) // there before the supervisor

	rt.add("new", "no", nil)
	s.Poke()
	next(t, events, "new", EventCreate, nil)
	next(t, events, "new", EventStart, nil)

	rt.remove("old")
	if d := next(t, events, "old", EventDestroy, nil); d.ByUser {
		t.Errorf("destroy = %+v", d)
	}
	// A person's berth rm is reported once, by the verbs.
	rt.remove("new")
	s.Acted(Event{Type: EventDestroy, Container: "new"})
	if d := next(t, events, "new", EventDestroy, nil); !d.ByUser {
		t.Errorf("destroy = %+v", d)
	}
	eventually(t, "new is forgotten", func() bool { _, ok := s.State("new"); return !ok })
	none(t, events, "new", EventDestroy, 0)
}

func TestAutoRemove(t *testing.T) {
	rt := newFake()
	rt.add("adopted", "always", nil)
	rt.ctrs["adopted"].info.Labels = map[string]string{resource.AutoRemoveLabel: "true"}
	rt.ctrs["adopted"].info.Owner = resource.RunProject + `/container.adopted["x"]`
	dir := t.TempDir()
	s, events, _ := started(t, rt, Config{Dir: dir})
	watching(t, s, "adopted")
	rt.add("mine", "no", nil)
	rt.mu.Lock()
	rt.ctrs["mine"].info.Labels = map[string]string{resource.AutoRemoveLabel: "true"}
	rt.mu.Unlock()
	s.Poke()
	watching(t, s, "mine")

	// Found on the host at the start, no process of this agent waits for
	// it: the supervisor removes it, and never restarts it.
	rt.exit("adopted", 0, false)
	next(t, events, "adopted", EventDie, nil)
	next(t, events, "adopted", EventDestroy, nil)
	if _, err := rt.Inspect(context.Background(), "adopted"); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("adopted --rm container still there: %v", err)
	}
	none(t, events, "adopted", EventDrift, 0)
	// Made while this agent runs: berth run removes it.
	rt.exit("mine", 0, false)
	next(t, events, "mine", EventDie, nil)
	settled(t, s, rt, "mine")
	none(t, events, "mine", EventDestroy, 0)
	if len(rt.startLog()) != 0 {
		t.Errorf("starts = %v", rt.startLog())
	}
}

func TestHealthcheckChangedInPlace(t *testing.T) {
	rt := newFake()
	var mu sync.Mutex
	var seen []string
	rt.exec = func(_ string, args []string) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, strings.Join(args, " "))
		return 0, nil
	}
	rt.add("web", "no", &resource.HealthcheckSpec{Command: []string{"old"}, Interval: "10ms", Retries: 1})
	s, events, _ := started(t, rt, Config{Dir: t.TempDir()})
	next(t, events, "web", EventHealthStatus, func(e Event) bool { return e.Health == HealthStarting })
	next(t, events, "web", EventHealthStatus, func(e Event) bool { return e.Health == HealthHealthy })

	// berth apply changes it in place: the new check runs, the state stays.
	rt.mu.Lock()
	rt.ctrs["web"].info.Healthcheck = &resource.HealthcheckSpec{Command: []string{"new"}, Interval: "10ms", Retries: 1}
	rt.mu.Unlock()
	s.Poke()
	eventually(t, "the new check runs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[len(seen)-1] == "new"
	})
	if h, _ := s.Health("web"); h.Status != HealthHealthy {
		t.Errorf("health after the change = %+v", h)
	}
	none(t, events, "web", EventHealthStatus, 100*time.Millisecond)

	// And removed: no health any more.
	rt.mu.Lock()
	rt.ctrs["web"].info.Healthcheck = nil
	rt.mu.Unlock()
	s.Poke()
	eventually(t, "the health is gone", func() bool { _, ok := s.Health("web"); return !ok })
}

func TestHealthOfTheRunInProgress(t *testing.T) {
	hc := &resource.HealthcheckSpec{Command: []string{"check"}}
	t0 := time.Now()
	healthy := &Health{Status: HealthHealthy, Log: []Probe{{ExitCode: 0}}}
	st := State{Health: healthy, HealthRun: t0}
	running := container.Info{Status: container.StatusRunning, StartedAt: t0, Healthcheck: hc}
	if h := st.HealthOf(running); h == nil || h.Status != HealthHealthy {
		t.Errorf("same run: %+v", h)
	}
	restarted := running
	restarted.StartedAt = t0.Add(time.Second)
	if h := st.HealthOf(restarted); h == nil || h.Status != HealthStarting || len(h.Log) != 1 {
		t.Errorf("a new run: %+v, want starting with the old probes", h)
	}
	if h := (State{}).HealthOf(running); h == nil || h.Status != HealthStarting {
		t.Errorf("never checked: %+v", h)
	}
	exited := running
	exited.Status = container.StatusExited
	noCheck := running
	noCheck.Healthcheck = nil
	if st.HealthOf(exited) != nil || st.HealthOf(noCheck) != nil {
		t.Error("health of an exited container, or of one without a check")
	}
}

// A container removed and made again under its name before a scan
// noticed (apply replacing it, rm -f then run --name) is supervised: its
// old watch, which saw it gone, does not stand in for the new one.
func TestAContainerMadeAgainUnderItsNameIsSupervised(t *testing.T) {
	rt := newFake()
	rt.add("web", "always", nil)
	// No scan but the ones the test asks for.
	s, events, _ := started(t, rt, Config{Dir: t.TempDir(), ScanInterval: time.Hour, DriftInterval: time.Hour})
	watching(t, s, "web")
	s.mu.Lock()
	old := s.watches["web"]
	s.mu.Unlock()
	rt.remove("web")
	<-old.done // its watch saw it gone
	rt.add("web", "always", nil)
	s.Poke()
	eventually(t, "a new watch looked at web", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		w := s.watches["web"]
		return w != old && w != nil && w.seen
	})
	next(t, events, "web", EventDestroy, nil)
	next(t, events, "web", EventCreate, nil)
	rt.exit("web", 1, false)
	next(t, events, "web", EventDie, nil)
	next(t, events, "web", EventRestart, nil)
}

// A person's stop that comes between the supervisor's decision to restart
// and its start is not undone.
func TestAStopDuringARestartIsRespected(t *testing.T) {
	rt := newFake()
	rt.add("web", "always", nil)
	s, events, _ := started(t, rt, Config{Dir: t.TempDir()})
	watching(t, s, "web")
	rt.beforeStart = func(name string) { rt.stopExited(name) }
	rt.exit("web", 1, false)
	next(t, events, "web", EventDie, nil)
	eventually(t, "the restart is given up", func() bool {
		st, _ := s.State("web")
		return st.RestartingAt.IsZero()
	})
	none(t, events, "web", EventRestart, 0)
	if in, _ := rt.Inspect(context.Background(), "web"); in.Status != container.StatusExited || len(rt.startLog()) != 0 {
		t.Errorf("web = %+v, starts %v: the restart overruled the stop", in, rt.startLog())
	}
}
