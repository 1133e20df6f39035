package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/agent/supervise"
	"github.com/seed-e88ffcd2/berth/driver/container"
)

func evs(list []Event) string {
	var out []string
	for _, e := range list {
		s := string(e.Type) + " " + e.Container
		if e.Type == ActionDie && e.ExitCode != 0 {
			s += fmt.Sprintf(" %d", e.ExitCode)
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

var base = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func info(name, status string, started, finished int, code int) container.Info {
	in := container.Info{Name: name, Status: status, Created: base, ExitCode: code}
	if started >= 0 {
		in.StartedAt = base.Add(time.Duration(started) * time.Second)
	}
	if finished >= 0 {
		in.FinishedAt = base.Add(time.Duration(finished) * time.Second)
	}
	return in
}

// TestEventsFromChanges: without a supervisor, events are what changed
// between two looks at the containers.
func TestEventsFromChanges(t *testing.T) {
	now := base.Add(time.Minute)
	stopped := info("web", "exited", 1, 30, 137)
	stopped.StoppedByUser = true
	oom := info("web", "exited", 1, 30, 137)
	oom.OOMKilled = true
	for _, tc := range []struct {
		name      string
		prev, cur []container.Info
		want      string
	}{
		{"nothing", []container.Info{info("web", "running", 1, -1, 0)}, []container.Info{info("web", "running", 1, -1, 0)}, ""},
		{"made and started", nil, []container.Info{info("web", "running", 1, -1, 0)}, "create web, start web"},
		{"made and already gone by", nil, []container.Info{info("web", "exited", 1, 2, 3)}, "create web, start web, die web 3"},
		{"exited", []container.Info{info("web", "running", 1, -1, 0)}, []container.Info{info("web", "exited", 1, 30, 3)}, "die web 3"},
		{"oom", []container.Info{info("web", "running", 1, -1, 0)}, []container.Info{oom}, "oom web, die web 137"},
		{"stopped by a person", []container.Info{info("web", "running", 1, -1, 0)}, []container.Info{stopped}, "die web 137, stop web"},
		{"started again", []container.Info{info("web", "exited", 1, 30, 3)}, []container.Info{info("web", "running", 40, -1, 0)}, "start web"},
		{"restarted between looks", []container.Info{info("web", "running", 1, -1, 0)}, []container.Info{info("web", "running", 40, -1, 0)}, "die web, start web"},
		{"removed", []container.Info{info("web", "running", 1, -1, 0)}, nil, "destroy web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := evs(changes(byName(tc.prev), byName(tc.cur), now)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	// A container made anew under the same name between two looks.
	again := info("web", "running", 50, -1, 0)
	again.Created = base.Add(45 * time.Second)
	if got := evs(changes(byName([]container.Info{info("web", "running", 1, -1, 0)}), byName([]container.Info{again}), now)); got != "destroy web, create web, start web" {
		t.Errorf("replaced: %q", got)
	}
}

// TestEventsHistory: the past, from what containers record, oldest first
// and only since the time asked.
func TestEventsHistory(t *testing.T) {
	a := info("a", "exited", 10, 20, 1)
	b := info("b", "running", 15, -1, 0)
	b.Created = base.Add(5 * time.Second)
	if got := evs(history([]container.Info{a, b}, base)); got != "create a, create b, start a, start b, die a 1" {
		t.Errorf("history: %q", got)
	}
	if got := evs(history([]container.Info{a, b}, base.Add(12*time.Second))); got != "start b, die a 1" {
		t.Errorf("history since 12s: %q", got)
	}
}

// TestReplayInTimeOrderThenLive: the history a stream starts with is in
// the order of the events' times, not of their recording (a create the
// scan found after the start a verb reported), and the live events after
// it come once each, an event recorded while the history is read too.
func TestReplayInTimeOrderThenLive(t *testing.T) {
	bus, err := supervise.NewBus("", 100)
	if err != nil {
		t.Fatal(err)
	}
	bus.Emit(Event{Time: base.Add(2 * time.Second), Type: ActionStart, Container: "web"})
	bus.Emit(Event{Time: base.Add(time.Second), Type: ActionCreate, Container: "web"})
	live, unsubscribe := bus.Subscribe(time.Time{})
	defer unsubscribe()
	// Between the subscription and the reading of the history: in both.
	bus.Emit(Event{Time: base.Add(3 * time.Second), Type: ActionDie, Container: "web"})
	past := inTimeOrder(bus.History(base))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := replayThenLive(ctx, past, live)
	bus.Emit(Event{Time: base.Add(4 * time.Second), Type: ActionDestroy, Container: "web"})
	var got []Event
	for len(got) < 4 {
		select {
		case e := <-out:
			got = append(got, e)
		case <-time.After(5 * time.Second):
			t.Fatalf("got only %s", evs(got))
		}
	}
	if s := evs(got); s != "create web, start web, die web, destroy web" {
		t.Errorf("events: %s", s)
	}
	select {
	case e := <-out:
		t.Errorf("one more event: %v", e)
	case <-time.After(100 * time.Millisecond):
	}
}
