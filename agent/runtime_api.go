package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/seed-e88ffcd2/berth/agent/api"
)

// The Runtime over the agent's API: the endpoints the agent serves
// (RegisterRuntime) and the client the CLI uses (ClientRuntime).
//
//	GET    /v1/containers?all=1                       []Container (running only without all)
//	GET    /v1/containers/{name}                      Container
//	POST   /v1/containers/{name}/start                Container
//	POST   /v1/containers/{name}/stop?timeout=10      Container (timeout: seconds or a duration; default its stop_timeout)
//	POST   /v1/containers/{name}/restart?timeout=10   Container
//	POST   /v1/containers/{name}/kill?signal=HUP      Container (default KILL)
//	DELETE /v1/containers/{name}?force=1              Container (what was removed)
//	GET    /v1/containers/{name}/top                  []Process
//	GET    /v1/containers/{name}/stats?stream=1       JSON lines of Stats
//	GET    /v1/containers/{name}/logs?follow=1&tail=100&since=T&timestamps=1
//	                                                  JSON lines of LogEntry
//	GET    /v1/events?since=T&until=T&container=NAME&action=die
//	                                                  JSON lines of Event
//
// Booleans are 1, 0, true or false; times are RFC 3339, Unix seconds, or
// a duration before now (10m); container and action repeat. A parameter
// the endpoint does not know, or given twice where it takes one, is
// refused, naming the ones it takes. Streams flush every line and end
// when the client goes away.

// RegisterRuntime serves rt's endpoints on srv.
func RegisterRuntime(srv *api.Server, rt Runtime) {
	one := func(method, suffix string, fn func(ctx context.Context, name string, q url.Values) (Container, error), params ...string) {
		srv.Handle(method+" /v1/containers/{name}"+suffix, api.JSON(func(r *http.Request, _ *api.None) (*Container, error) {
			q, err := query(r, params...)
			if err != nil {
				return nil, err
			}
			c, err := fn(r.Context(), r.PathValue("name"), q)
			if err != nil {
				return nil, err
			}
			return &c, nil
		}))
	}
	srv.Handle("GET /v1/containers", api.JSON(func(r *http.Request, _ *api.None) (*[]Container, error) {
		q, err := query(r, "all")
		if err != nil {
			return nil, err
		}
		all, err := boolParam(q, "all")
		if err != nil {
			return nil, err
		}
		list, err := rt.List(r.Context(), all)
		return &list, err
	}))
	one("GET", "", func(ctx context.Context, name string, _ url.Values) (Container, error) {
		return rt.Inspect(ctx, name)
	})
	one("POST", "/start", func(ctx context.Context, name string, _ url.Values) (Container, error) {
		return rt.Start(ctx, name)
	})
	one("POST", "/stop", func(ctx context.Context, name string, q url.Values) (Container, error) {
		t, err := timeoutParam(q)
		if err != nil {
			return Container{}, err
		}
		return rt.Stop(ctx, name, t)
	}, "timeout")
	one("POST", "/restart", func(ctx context.Context, name string, q url.Values) (Container, error) {
		t, err := timeoutParam(q)
		if err != nil {
			return Container{}, err
		}
		return rt.Restart(ctx, name, t)
	}, "timeout")
	one("POST", "/kill", func(ctx context.Context, name string, q url.Values) (Container, error) {
		sig := q.Get("signal")
		if _, err := ParseSignal(sig); err != nil {
			return Container{}, api.Invalid("query parameter signal: %v", err)
		}
		return rt.Kill(ctx, name, sig)
	}, "signal")
	one("DELETE", "", func(ctx context.Context, name string, q url.Values) (Container, error) {
		force, err := boolParam(q, "force")
		if err != nil {
			return Container{}, err
		}
		return rt.Remove(ctx, name, force)
	}, "force")
	srv.Handle("GET /v1/containers/{name}/top", api.JSON(func(r *http.Request, _ *api.None) (*[]Process, error) {
		if _, err := query(r); err != nil {
			return nil, err
		}
		ps, err := rt.Top(r.Context(), r.PathValue("name"))
		return &ps, err
	}))
	srv.Handle("GET /v1/containers/{name}/stats", streamHandler(func(r *http.Request) (Stream[Stats], error) {
		q, err := query(r, "stream")
		if err != nil {
			return nil, err
		}
		stream, err := boolParam(q, "stream")
		if err != nil {
			return nil, err
		}
		return rt.Stats(r.Context(), r.PathValue("name"), stream)
	}))
	srv.Handle("GET /v1/containers/{name}/logs", streamHandler(func(r *http.Request) (Stream[LogEntry], error) {
		q, err := query(r, "follow", "tail", "since", "timestamps")
		if err != nil {
			return nil, err
		}
		o, err := logOptions(q, time.Now())
		if err != nil {
			return nil, err
		}
		return rt.Logs(r.Context(), r.PathValue("name"), o)
	}))
	srv.Handle("GET /v1/events", streamHandler(func(r *http.Request) (Stream[Event], error) {
		q, err := query(r, "since", "until", "container", "action")
		if err != nil {
			return nil, err
		}
		o, err := eventOptions(q, time.Now())
		if err != nil {
			return nil, err
		}
		return rt.Events(r.Context(), o)
	}))
}

// streamHandler answers a stream as JSON lines, flushing each.
func streamHandler[T any](open func(r *http.Request) (Stream[T], error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := api.DecodeRequest(r, &api.None{}); err != nil {
			api.WriteError(w, err)
			return
		}
		s, err := open(r)
		if err != nil {
			api.WriteError(w, err)
			return
		}
		defer s.Close()
		lw := api.NewLineWriter(w)
		lw.Start()
		for {
			v, err := s.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				lw.Fail(err)
				return
			}
			if lw.Write(v) != nil {
				return // the client is gone
			}
		}
	})
}

// query checks a request's query: only the parameters allowed, each once
// (container and action may repeat).
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, api.Invalid("query: %v", err)
	}
	var unknown []string
	for k, vs := range q {
		if !contains(allowed, k) {
			unknown = append(unknown, k)
			continue
		}
		if len(vs) > 1 && k != "container" && k != "action" {
			return nil, api.Invalid("query parameter %s is given %d times: give it once", k, len(vs))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		takes := "none"
		if len(allowed) > 0 {
			takes = strings.Join(allowed, ", ")
		}
		return nil, api.Invalid("unknown query parameter %s for %s %s (it takes: %s)", strings.Join(unknown, ", "), r.Method, r.URL.Path, takes)
	}
	return q, nil
}

func boolParam(q url.Values, name string) (bool, error) {
	if !q.Has(name) {
		return false, nil
	}
	switch q.Get(name) {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, api.Invalid("query parameter %s: %q is not a boolean (use 1, 0, true or false)", name, q.Get(name))
}

// timeoutParam reads a stop timeout: negative (the container's own) when
// absent.
func timeoutParam(q url.Values) (time.Duration, error) {
	if !q.Has("timeout") {
		return -1, nil
	}
	t, err := ParseTimeout(q.Get("timeout"))
	if err != nil {
		return 0, api.Invalid("query parameter timeout: %v", err)
	}
	return t, nil
}

// ParseTimeout reads a stop timeout as whole seconds (docker stop -t 10)
// or a duration (1.5s, 2m).
func ParseTimeout(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%q: a timeout is not negative", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a timeout (use seconds such as 10, or a duration such as 1.5s)", s)
	}
	return d, nil
}

// ParseTime reads a time as berth logs --since and berth events take it:
// RFC 3339 (2026-11-27T12:00:00Z, or a date 2026-11-27), Unix seconds
// (1795000000, fractions allowed), or a duration before now (10m, 1h30m).
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
		sec, frac := int64(f), f-float64(int64(f))
		return time.Unix(sec, int64(frac*1e9)), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (use RFC 3339 such as 2026-11-27T12:00:00Z, Unix seconds, or a duration before now such as 10m)", s)
}

func timeParam(q url.Values, name string, now time.Time) (time.Time, error) {
	if !q.Has(name) {
		return time.Time{}, nil
	}
	t, err := ParseTime(q.Get(name), now)
	if err != nil {
		return t, api.Invalid("query parameter %s: %v", name, err)
	}
	return t, nil
}

func logOptions(q url.Values, now time.Time) (LogOptions, error) {
	o := LogOptions{Tail: -1}
	var err error
	if o.Follow, err = boolParam(q, "follow"); err != nil {
		return o, err
	}
	if o.Timestamps, err = boolParam(q, "timestamps"); err != nil {
		return o, err
	}
	if o.Since, err = timeParam(q, "since", now); err != nil {
		return o, err
	}
	if q.Has("tail") {
		if o.Tail, err = ParseTail(q.Get("tail")); err != nil {
			return o, api.Invalid("query parameter tail: %v", err)
		}
	}
	return o, nil
}

// ParseTail reads berth logs --tail: a number of lines, or all (-1). A
// negative number is all, as docker logs takes it (--tail -1).
func ParseTail(s string) (int, error) {
	if s == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number of lines (use a number such as 100, or all)", s)
	}
	if n < 0 {
		return -1, nil
	}
	return n, nil
}

func eventOptions(q url.Values, now time.Time) (EventOptions, error) {
	var o EventOptions
	var err error
	if o.Since, err = timeParam(q, "since", now); err != nil {
		return o, err
	}
	if o.Until, err = timeParam(q, "until", now); err != nil {
		return o, err
	}
	o.Names = q["container"]
	for _, a := range q["action"] {
		if !contains(EventActions, a) {
			return o, api.Invalid("query parameter action: %q is not an event action (use one of %s)", a, strings.Join(EventActions, ", "))
		}
	}
	o.Actions = q["action"]
	return o, nil
}

// ClientRuntime is the Runtime of the agent the client talks to.
type ClientRuntime struct{ c *api.Client }

var _ Runtime = (*ClientRuntime)(nil)

// NewClientRuntime is the Runtime of the agent c talks to.
func NewClientRuntime(c *api.Client) *ClientRuntime { return &ClientRuntime{c: c} }

func containerPath(name, suffix string, q url.Values) string {
	p := "/v1/containers/" + url.PathEscape(name) + suffix
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}

func (r *ClientRuntime) one(ctx context.Context, method, path string) (Container, error) {
	var c Container
	err := r.c.Do(ctx, method, path, nil, &c)
	return c, err
}

// List implements Runtime.
func (r *ClientRuntime) List(ctx context.Context, all bool) ([]Container, error) {
	path := "/v1/containers"
	if all {
		path += "?all=1"
	}
	var list []Container
	err := r.c.Do(ctx, http.MethodGet, path, nil, &list)
	return list, err
}

// Inspect implements Runtime.
func (r *ClientRuntime) Inspect(ctx context.Context, name string) (Container, error) {
	return r.one(ctx, http.MethodGet, containerPath(name, "", nil))
}

// Start implements Runtime.
func (r *ClientRuntime) Start(ctx context.Context, name string) (Container, error) {
	return r.one(ctx, http.MethodPost, containerPath(name, "/start", nil))
}

func timeoutQuery(t time.Duration) url.Values {
	if t < 0 {
		return nil
	}
	return url.Values{"timeout": {t.String()}}
}

// Stop implements Runtime.
func (r *ClientRuntime) Stop(ctx context.Context, name string, timeout time.Duration) (Container, error) {
	return r.one(ctx, http.MethodPost, containerPath(name, "/stop", timeoutQuery(timeout)))
}

// Restart implements Runtime.
func (r *ClientRuntime) Restart(ctx context.Context, name string, timeout time.Duration) (Container, error) {
	return r.one(ctx, http.MethodPost, containerPath(name, "/restart", timeoutQuery(timeout)))
}

// Kill implements Runtime.
func (r *ClientRuntime) Kill(ctx context.Context, name, signal string) (Container, error) {
	var q url.Values
	if signal != "" {
		q = url.Values{"signal": {signal}}
	}
	return r.one(ctx, http.MethodPost, containerPath(name, "/kill", q))
}

// Remove implements Runtime.
func (r *ClientRuntime) Remove(ctx context.Context, name string, force bool) (Container, error) {
	var q url.Values
	if force {
		q = url.Values{"force": {"1"}}
	}
	return r.one(ctx, http.MethodDelete, containerPath(name, "", q))
}

// Top implements Runtime.
func (r *ClientRuntime) Top(ctx context.Context, name string) ([]Process, error) {
	var ps []Process
	err := r.c.Do(ctx, http.MethodGet, containerPath(name, "/top", nil), nil, &ps)
	return ps, err
}

// Stats implements Runtime.
func (r *ClientRuntime) Stats(ctx context.Context, name string, stream bool) (Stream[Stats], error) {
	q := url.Values{"stream": {"0"}}
	if stream {
		q.Set("stream", "1")
	}
	return openLines[Stats](ctx, r.c, containerPath(name, "/stats", q))
}

// Logs implements Runtime.
func (r *ClientRuntime) Logs(ctx context.Context, name string, o LogOptions) (Stream[LogEntry], error) {
	q := url.Values{}
	if o.Follow {
		q.Set("follow", "1")
	}
	if o.Tail >= 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.Format(time.RFC3339Nano))
	}
	if o.Timestamps {
		q.Set("timestamps", "1")
	}
	return openLines[LogEntry](ctx, r.c, containerPath(name, "/logs", q))
}

// Events implements Runtime.
func (r *ClientRuntime) Events(ctx context.Context, o EventOptions) (Stream[Event], error) {
	q := url.Values{}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.Format(time.RFC3339Nano))
	}
	if !o.Until.IsZero() {
		q.Set("until", o.Until.Format(time.RFC3339Nano))
	}
	q["container"] = o.Names
	q["action"] = o.Actions
	path := "/v1/events"
	if enc := q.Encode(); enc != "" {
		path += "?" + enc
	}
	return openLines[Event](ctx, r.c, path)
}

// lineStream is a Stream read from the agent's JSON lines.
type lineStream[T any] struct {
	lines  *api.Lines
	cancel context.CancelFunc
}

func openLines[T any](ctx context.Context, c *api.Client, path string) (Stream[T], error) {
	ctx, cancel := context.WithCancel(ctx)
	lines, err := c.Stream(ctx, http.MethodGet, path)
	if err != nil {
		cancel()
		return nil, err
	}
	return &lineStream[T]{lines: lines, cancel: cancel}, nil
}

func (s *lineStream[T]) Next() (T, error) {
	var v T
	err := s.lines.Next(&v)
	return v, err
}

func (s *lineStream[T]) Close() error {
	s.cancel()
	return s.lines.Close()
}
