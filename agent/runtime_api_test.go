package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/agent/api"
	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/resource"
)

// fakeRuntime records what the endpoints asked of it.
type fakeRuntime struct {
	mu    sync.Mutex
	calls []string
	// streamDone is closed when a stream the fake handed out is closed
	// or its context ends.
	streamDone chan struct{}
	logOpts    LogOptions
	eventOpts  EventOptions
}

func (f *fakeRuntime) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeRuntime) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

func ctr(name string) Container {
	return Container{Info: container.Info{Name: name, Status: container.StatusRunning, Owner: "p/container." + name}, Health: "healthy"}
}

func (f *fakeRuntime) find(name string) (Container, error) {
	if name == "missing" {
		return Container{}, resource.Errorf(resource.ErrNotFound, "no container %q on this host", name)
	}
	return ctr(name), nil
}

func (f *fakeRuntime) List(_ context.Context, all bool) ([]Container, error) {
	f.record("list all=" + map[bool]string{true: "1", false: "0"}[all])
	return []Container{ctr("a"), ctr("b")}, nil
}
func (f *fakeRuntime) Inspect(_ context.Context, name string) (Container, error) {
	f.record("inspect " + name)
	return f.find(name)
}
func (f *fakeRuntime) Start(_ context.Context, name string) (Container, error) {
	f.record("start " + name)
	return f.find(name)
}
func (f *fakeRuntime) Stop(_ context.Context, name string, t time.Duration) (Container, error) {
	f.record("stop " + name + " " + t.String())
	return f.find(name)
}
func (f *fakeRuntime) Restart(_ context.Context, name string, t time.Duration) (Container, error) {
	f.record("restart " + name + " " + t.String())
	return f.find(name)
}
func (f *fakeRuntime) Kill(_ context.Context, name, sig string) (Container, error) {
	f.record("kill " + name + " " + sig)
	return f.find(name)
}
func (f *fakeRuntime) Remove(_ context.Context, name string, force bool) (Container, error) {
	f.record("rm " + name + " " + map[bool]string{true: "force", false: "noforce"}[force])
	if name == "running" && !force {
		return Container{}, resource.Errorf(resource.ErrConflict, "container running is running")
	}
	return f.find(name)
}
func (f *fakeRuntime) Top(_ context.Context, name string) ([]Process, error) {
	f.record("top " + name)
	return []Process{{PID: 7, User: "root", CPU: time.Second, Command: "sleep 1"}}, nil
}

// Streams: the values given, then (follow) a wait for the client to go,
// or an error.
func (f *fakeRuntime) Stats(ctx context.Context, name string, stream bool) (Stream[Stats], error) {
	f.record("stats " + name)
	return fakeStream(ctx, f, []Stats{{Name: name, CPUPercent: 12.5, Pids: 3}}, stream, nil), nil
}
func (f *fakeRuntime) Logs(ctx context.Context, name string, o LogOptions) (Stream[LogEntry], error) {
	f.record("logs " + name)
	f.mu.Lock()
	f.logOpts = o
	f.mu.Unlock()
	if _, err := f.find(name); err != nil {
		return nil, err
	}
	var fail error
	if name == "broken" {
		fail = errors.New("the log is unreadable")
	}
	return fakeStream(ctx, f, []LogEntry{{Log: "one\n", Stream: "stdout"}, {Log: "two\n", Stream: "stderr"}}, o.Follow, fail), nil
}
func (f *fakeRuntime) Events(ctx context.Context, o EventOptions) (Stream[Event], error) {
	f.record("events")
	f.mu.Lock()
	f.eventOpts = o
	f.mu.Unlock()
	return fakeStream(ctx, f, []Event{{Type: ActionDie, Container: "a"}}, true, nil), nil
}

func fakeStream[T any](ctx context.Context, f *fakeRuntime, vals []T, wait bool, fail error) Stream[T] {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan item[T])
	go func() {
		defer close(ch)
		defer func() {
			if f.streamDone != nil {
				close(f.streamDone)
			}
		}()
		for _, v := range vals {
			if !send(ctx, ch, item[T]{v: v}) {
				return
			}
		}
		if fail != nil {
			send(ctx, ch, item[T]{err: fail})
			return
		}
		if wait {
			<-ctx.Done()
		}
	}()
	return &chanStream[T]{ch: ch, cancel: cancel}
}

// serve runs the runtime endpoints of rt on a socket and returns a client.
func serve(t *testing.T, rt Runtime) *api.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(api.Options{Version: "test"})
	RegisterRuntime(srv, rt)
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	c, err := api.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestRuntimeOverTheAPI(t *testing.T) {
	f := &fakeRuntime{}
	rt := NewClientRuntime(serve(t, f))
	ctx := context.Background()

	list, err := rt.List(ctx, true)
	if err != nil || len(list) != 2 || list[0].Name != "a" || list[0].Health != "healthy" || list[0].Owner != "p/container.a" || f.last() != "list all=1" {
		t.Errorf("List = %+v, %v (%s)", list, err, f.last())
	}
	if _, err := rt.List(ctx, false); err != nil || f.last() != "list all=0" {
		t.Errorf("List(false): %v (%s)", err, f.last())
	}
	for _, tc := range []struct {
		call func() (Container, error)
		want string
	}{
		{func() (Container, error) { return rt.Inspect(ctx, "web") }, "inspect web"},
		{func() (Container, error) { return rt.Start(ctx, "web") }, "start web"},
		{func() (Container, error) { return rt.Stop(ctx, "web", -1) }, "stop web -1ns"},
		{func() (Container, error) { return rt.Stop(ctx, "web", 1500*time.Millisecond) }, "stop web 1.5s"},
		{func() (Container, error) { return rt.Restart(ctx, "web", 0) }, "restart web 0s"},
		{func() (Container, error) { return rt.Kill(ctx, "web", "") }, "kill web "},
		{func() (Container, error) { return rt.Kill(ctx, "web", "SIGHUP") }, "kill web SIGHUP"},
		{func() (Container, error) { return rt.Remove(ctx, "web", true) }, "rm web force"},
		{func() (Container, error) { return rt.Inspect(ctx, "odd name/ü") }, "inspect odd name/ü"},
	} {
		c, err := tc.call()
		if err != nil || f.last() != tc.want || c.Info.Status != "running" {
			t.Errorf("%s: got %q, %+v, %v", tc.want, f.last(), c, err)
		}
	}
	if _, err := rt.Inspect(ctx, "missing"); !errors.Is(err, resource.ErrNotFound) || !strings.Contains(err.Error(), `no container "missing"`) {
		t.Errorf("Inspect(missing) = %v, want not found with the runtime's message", err)
	}
	if _, err := rt.Remove(ctx, "running", false); !errors.Is(err, resource.ErrConflict) {
		t.Errorf("Remove(running) = %v, want a conflict", err)
	}
	ps, err := rt.Top(ctx, "web")
	if err != nil || !reflect.DeepEqual(ps, []Process{{PID: 7, User: "root", CPU: time.Second, Command: "sleep 1"}}) {
		t.Errorf("Top = %+v, %v", ps, err)
	}

	// One sample without streaming.
	st, err := rt.Stats(ctx, "web", false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.Next()
	if err != nil || s.CPUPercent != 12.5 || s.Pids != 3 {
		t.Errorf("Stats = %+v, %v", s, err)
	}
	if _, err := st.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Stats after the sample: %v, want EOF", err)
	}
	st.Close()

	// Logs: the options travel; entries arrive; an error mid-stream is
	// the runtime's.
	since := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ls, err := rt.Logs(ctx, "web", LogOptions{Tail: 5, Since: since, Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		e, err := ls.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Stream+":"+e.Log)
	}
	ls.Close()
	if strings.Join(got, "") != "stdout:one\nstderr:two\n" {
		t.Errorf("logs: %q", got)
	}
	if o := f.logOpts; o.Tail != 5 || !o.Since.Equal(since) || !o.Timestamps || o.Follow {
		t.Errorf("log options arrived as %+v", o)
	}
	ls, err = rt.Logs(ctx, "broken", LogOptions{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	ls.Next()
	ls.Next()
	if _, err := ls.Next(); err == nil || !strings.Contains(err.Error(), "the log is unreadable") {
		t.Errorf("an error mid-stream arrived as %v", err)
	}
	ls.Close()
	if _, err := rt.Logs(ctx, "missing", LogOptions{}); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("Logs(missing) = %v, want not found", err)
	}

	es, err := rt.Events(ctx, EventOptions{Names: []string{"a", "b"}, Actions: []string{"die"}, Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := es.Next(); err != nil || e.Container != "a" || e.Type != ActionDie {
		t.Errorf("Events: %+v, %v", e, err)
	}
	es.Close()
	if o := f.eventOpts; !reflect.DeepEqual(o.Names, []string{"a", "b"}) || !reflect.DeepEqual(o.Actions, []string{"die"}) || !o.Since.Equal(since) {
		t.Errorf("event options arrived as %+v", o)
	}
}

// TestStreamEndsWhenClientGoes: a follow the client closes ends in the
// agent too.
func TestStreamEndsWhenClientGoes(t *testing.T) {
	f := &fakeRuntime{streamDone: make(chan struct{})}
	rt := NewClientRuntime(serve(t, f))
	ls, err := rt.Logs(context.Background(), "web", LogOptions{Follow: true, Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := ls.Next(); err != nil {
			t.Fatal(err)
		}
	}
	// The agent's stream waits for more; the client leaves.
	ls.Close()
	select {
	case <-f.streamDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the agent's stream did not end when the client went away")
	}
}

// TestStrictQueries: a parameter an endpoint does not take, a malformed
// value or one given twice is refused with a message naming it and what
// it accepts; nothing reaches the runtime.
func TestStrictQueries(t *testing.T) {
	f := &fakeRuntime{}
	c := serve(t, f)
	ctx := context.Background()
	for _, tc := range []struct {
		method, path string
		want         []string
	}{
		{"GET", "/v1/containers?all=yes", []string{"all", `"yes"`, "1, 0, true or false"}},
		{"GET", "/v1/containers?al=1", []string{"unknown query parameter al", "it takes: all"}},
		{"GET", "/v1/containers/web?x=1", []string{"unknown query parameter x", "it takes: none"}},
		{"POST", "/v1/containers/web/stop?timeout=-3", []string{"timeout", "not negative"}},
		{"POST", "/v1/containers/web/stop?timeout=soon", []string{"timeout", "seconds such as 10"}},
		{"POST", "/v1/containers/web/stop?timeout=1&timeout=2", []string{"timeout is given 2 times"}},
		{"POST", "/v1/containers/web/kill?signal=NOPE", []string{"signal", "KILL, TERM"}},
		{"POST", "/v1/containers/web/kill?signal=99", []string{"signal", "between 1 and 64"}},
		{"DELETE", "/v1/containers/web?force=2", []string{"force", "1, 0, true or false"}},
		{"GET", "/v1/containers/web/logs?tail=last", []string{"tail", "or all"}},
		{"GET", "/v1/containers/web/logs?since=yesterday", []string{"since", "RFC 3339"}},
		{"GET", "/v1/containers/web/logs?follow=1&lines=3", []string{"unknown query parameter lines", "follow, tail, since, timestamps"}},
		{"GET", "/v1/containers/web/stats?stream=maybe", []string{"stream", "boolean"}},
		{"GET", "/v1/events?action=explode", []string{"action", "explode", "health_status"}},
		{"GET", "/v1/events?until=never", []string{"until"}},
		{"GET", "/v1/containers/web/top?all=1", []string{"unknown query parameter all"}},
		{"GET", "/v1/containers/web/logs?%zz", []string{"query"}},
	} {
		before := len(f.calls)
		err := c.Do(ctx, tc.method, tc.path, nil, nil)
		var e *api.Error
		if !errors.As(err, &e) || e.Kind != api.KindInvalid || e.Status != http.StatusBadRequest || !errors.Is(err, resource.ErrInvalid) {
			t.Errorf("%s %s = %#v, want an invalid request", tc.method, tc.path, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(e.Message, w) {
				t.Errorf("%s %s: %q does not say %q", tc.method, tc.path, e.Message, w)
			}
		}
		if len(f.calls) != before {
			t.Errorf("%s %s reached the runtime: %s", tc.method, tc.path, f.last())
		}
	}
	// A body on a verb that takes none is refused too.
	if err := c.Do(ctx, "POST", "/v1/containers/web/start", map[string]any{"force": true}, nil); !errors.Is(err, resource.ErrInvalid) {
		t.Errorf("start with a body = %v, want invalid", err)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-27T11:00:00Z":      now.Add(-time.Hour),
		"2026-11-27T12:00:00+01:00": now.Add(-time.Hour),
		"10m":                       now.Add(-10 * time.Minute),
		"1h30m":                     now.Add(-90 * time.Minute),
		"1795780800":                time.Unix(1795780800, 0),
		"1795780800.5":              time.Unix(1795780800, 5e8),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-5m", "2026-13-01T00:00:00Z"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"": 9, "KILL": 9, "sigterm": 15, "SIGHUP": 1, "usr1": 10, "2": 2} {
		got, err := ParseSignal(in)
		if err != nil || int(got) != want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"NOPE", "0", "65", "-9", "SIG"} {
		if _, err := ParseSignal(bad); !errors.Is(err, resource.ErrInvalid) {
			t.Errorf("ParseSignal(%q) = %v, want invalid", bad, err)
		}
	}
}

func TestKillStopsOnlyWithStoppingSignals(t *testing.T) {
	for _, tc := range []struct {
		sig, own string
		want     bool
	}{
		{"KILL", "", true}, {"TERM", "", true}, {"INT", "SIGTERM", true}, {"HUP", "", false},
		{"USR1", "SIGTERM", false}, {"USR1", "SIGUSR1", true}, {"WINCH", "SIGPWR", false},
	} {
		sig, _ := ParseSignal(tc.sig)
		if got := stops(sig, tc.own); got != tc.want {
			t.Errorf("kill -s %s of a container stopped with %q marks it stopped by a person: %v, want %v", tc.sig, tc.own, got, tc.want)
		}
	}
}

// TestParseTail: a number of lines, all, and a negative number as all
// (docker logs --tail -1).
func TestParseTail(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "100": 100, "all": -1, "-1": -1, "-5": -1} {
		if got, err := ParseTail(in); err != nil || got != want {
			t.Errorf("ParseTail(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "some", "1.5"} {
		if _, err := ParseTail(in); err == nil {
			t.Errorf("ParseTail(%q) took it", in)
		}
	}
}
