package agent

import (
	"context"
	"io"
	"sort"
	"time"

	"github.com/seed-e88ffcd2/berth/agent/supervise"
	"github.com/seed-e88ffcd2/berth/driver/container"
)

// Events implements Runtime. In the agent the events are the supervisor's.
// Without one they are read off the containers themselves: the past ones
// from what each container records (made, last started, last exited),
// the new ones by looking at every container twice a second and telling
// what changed.
func (r *HostRuntime) Events(ctx context.Context, o EventOptions) (Stream[Event], error) {
	if !o.Until.IsZero() && !o.Until.After(time.Now()) {
		// Only the past: what is known of it, and the stream ends.
		var past []Event
		if sup := r.h.supervisor(); sup != nil {
			past = inTimeOrder(sup.Events().History(o.Since))
		} else {
			list, err := r.h.containers.List(ctx)
			if err != nil {
				return nil, err
			}
			past = history(list, o.Since)
		}
		var out []Event
		for _, e := range past {
			if o.match(e) {
				out = append(out, e)
			}
		}
		return &sliceStream[Event]{vals: out}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan item[Event])
	var src <-chan Event
	if sup := r.h.supervisor(); sup != nil {
		// The live events first, then the history: an event emitted
		// between the two is in both, and is reported once, from the
		// history (by its Seq).
		live, unsubscribe := sup.Subscribe(time.Time{})
		context.AfterFunc(ctx, unsubscribe)
		var past []Event
		if !o.Since.IsZero() {
			past = inTimeOrder(sup.Events().History(o.Since))
		}
		src = replayThenLive(ctx, past, live)
	} else {
		before, err := r.h.containers.List(ctx)
		if err != nil {
			cancel()
			return nil, err
		}
		src = r.watch(ctx, before, o.Since)
	}
	go func() {
		defer close(ch)
		var until <-chan time.Time
		if !o.Until.IsZero() {
			t := time.NewTimer(time.Until(o.Until))
			defer t.Stop()
			until = t.C
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-until:
				return
			case e, ok := <-src:
				if !ok {
					return
				}
				if !o.Until.IsZero() && e.Time.After(o.Until) {
					return
				}
				if o.match(e) && !send(ctx, ch, item[Event]{v: e}) {
					return
				}
			}
		}
	}()
	return &chanStream[Event]{ch: ch, cancel: cancel}, nil
}

// inTimeOrder sorts events by their time, keeping the order they were
// emitted in for equal times. The supervisor emits an event when it
// learns of it, with the time it happened: a container's create, found
// by a scan, is recorded after the start a verb reported, and earlier.
func inTimeOrder(events []Event) []Event {
	sort.SliceStable(events, func(i, j int) bool { return events[i].Time.Before(events[j].Time) })
	return events
}

// replayThenLive sends past, then the live events not among them (a live
// event whose Seq is not above the last of past was emitted before the
// history was read, and is in it).
func replayThenLive(ctx context.Context, past []Event, live <-chan Event) <-chan Event {
	var seen uint64
	for _, e := range past {
		seen = max(seen, e.Seq)
	}
	out := make(chan Event)
	go func() {
		defer close(out)
		for _, e := range past {
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
		for {
			var e Event
			select {
			case v, ok := <-live:
				if !ok {
					return
				}
				e = v
			case <-ctx.Done():
				return
			}
			if e.Seq != 0 && e.Seq <= seen {
				continue
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// watch reports the events since (from the containers' records) and then
// the changes seen between successive looks at the containers.
func (r *HostRuntime) watch(ctx context.Context, before []container.Info, since time.Time) <-chan Event {
	out := make(chan Event)
	go func() {
		defer close(out)
		emit := func(events []Event) bool {
			for _, e := range events {
				select {
				case out <- e:
				case <-ctx.Done():
					return false
				}
			}
			return true
		}
		if !since.IsZero() && !emit(history(before, since)) {
			return
		}
		prev := byName(before)
		t := time.NewTicker(r.poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now, err := r.h.containers.List(ctx)
			if err != nil {
				continue // a container half made or half removed: look again
			}
			cur := byName(now)
			if !emit(changes(prev, cur, time.Now().UTC())) {
				return
			}
			prev = cur
		}
	}()
	return out
}

func byName(list []container.Info) map[string]container.Info {
	m := make(map[string]container.Info, len(list))
	for _, in := range list {
		m[in.Name] = in
	}
	return m
}

func event(in container.Info, what supervise.EventType, at time.Time) Event {
	return Event{Time: at, Type: what, Container: in.Name, Owner: in.Owner, Image: in.Image}
}

func died(in container.Info, at time.Time) []Event {
	if !in.FinishedAt.IsZero() {
		at = in.FinishedAt
	}
	e := event(in, ActionDie, at)
	e.ExitCode, e.Signal = in.ExitCode, in.ExitSignal
	out := []Event{}
	if in.OOMKilled {
		out = append(out, event(in, ActionOOM, at))
	}
	return append(out, e)
}

// history is what the containers' own records tell of their past since a
// time, oldest first: when each was made, last started and last exited.
func history(list []container.Info, since time.Time) []Event {
	var out []Event
	for _, in := range list {
		if !in.Created.Before(since) {
			out = append(out, event(in, ActionCreate, in.Created))
		}
		if !in.StartedAt.IsZero() && !in.StartedAt.Before(since) {
			out = append(out, event(in, ActionStart, in.StartedAt))
		}
		if in.Status == container.StatusExited && !in.FinishedAt.IsZero() && !in.FinishedAt.Before(since) && !in.FinishedAt.Before(in.StartedAt) {
			out = append(out, died(in, in.FinishedAt)...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// changes tells what happened between two looks at the containers.
func changes(prev, cur map[string]container.Info, now time.Time) []Event {
	var out []Event
	names := make([]string, 0, len(cur))
	for n := range cur {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := cur[n]
		p, seen := prev[n]
		if !seen || !p.Created.Equal(c.Created) {
			if seen {
				out = append(out, event(p, ActionDestroy, now)) // replaced between looks
			}
			out = append(out, event(c, ActionCreate, c.Created))
			p = container.Info{}
		}
		running := c.Status == container.StatusRunning
		wasRunning := p.Status == container.StatusRunning
		restarted := !c.StartedAt.IsZero() && !c.StartedAt.Equal(p.StartedAt)
		switch {
		case wasRunning && restarted:
			// Its run ended and a new one began between two looks: how
			// the first ended is gone with the new start.
			out = append(out, event(p, ActionDie, now))
		case wasRunning && !running:
			out = append(out, died(c, now)...)
		}
		if c.StoppedByUser && !p.StoppedByUser && !running {
			out = append(out, event(c, ActionStop, now))
		}
		if restarted {
			out = append(out, event(c, ActionStart, c.StartedAt))
			if c.Status == container.StatusExited {
				out = append(out, died(c, now)...)
			}
		}
	}
	gone := make([]string, 0)
	for n := range prev {
		if _, ok := cur[n]; !ok {
			gone = append(gone, n)
		}
	}
	sort.Strings(gone)
	for _, n := range gone {
		out = append(out, event(prev[n], ActionDestroy, now))
	}
	return out
}

// sliceStream is a Stream of values known in advance.
type sliceStream[T any] struct{ vals []T }

func (s *sliceStream[T]) Next() (T, error) {
	var v T
	if len(s.vals) == 0 {
		return v, io.EOF
	}
	v, s.vals = s.vals[0], s.vals[1:]
	return v, nil
}

func (s *sliceStream[T]) Close() error { s.vals = nil; return nil }
