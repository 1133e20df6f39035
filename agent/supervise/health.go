package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/resource"
)

// checker runs one container's health check for one run of its init.
type checker struct {
	spec   resource.HealthcheckSpec
	run    time.Time // the run's start (Info.StartedAt)
	cancel context.CancelFunc
	done   chan struct{}
}

// startHealth starts checking the running container's health. A run seen
// for the first time starts as "starting"; one an earlier supervisor was
// already checking (the agent restarted) keeps its state.
func (s *Supervisor) startHealth(ctx context.Context, w *watch, in container.Info) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := w.rec
	if rec.Health == nil || !rec.HealthRun.Equal(in.StartedAt) {
		old := ""
		var log []Probe
		if rec.Health != nil {
			old, log = rec.Health.Status, rec.Health.Log
		}
		rec.Health = &Health{Status: HealthStarting, Log: log}
		rec.HealthRun = in.StartedAt
		s.persist(w)
		s.signal()
		if old != HealthStarting {
			s.emit(in, Event{Type: EventHealthStatus, Health: HealthStarting, Message: "health check starting"})
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	c := &checker{spec: *in.Healthcheck, run: in.StartedAt, cancel: cancel, done: make(chan struct{})}
	w.health = c
	go s.checkLoop(cctx, w, c)
}

// stopHealth stops the container's health check, if one runs, and waits
// for it to end.
func (s *Supervisor) stopHealth(w *watch) {
	s.mu.Lock()
	c := w.health
	w.health = nil
	s.mu.Unlock()
	if c != nil {
		c.cancel()
		<-c.done
	}
}

// checkLoop runs the check every interval (the first one interval after
// it starts, as Docker does) until ctx ends.
func (s *Supervisor) checkLoop(ctx context.Context, w *watch, c *checker) {
	defer close(c.done)
	interval, timeout, startPeriod, retries := c.spec.Durations()
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p, ok := s.probe(ctx, w.name, c.spec.Args(), timeout)
		if ctx.Err() != nil {
			return // the container exited or the supervisor stops: no verdict
		}
		if ok {
			s.recordProbe(w, c, p, startPeriod, retries)
		}
		t.Reset(interval)
	}
}

// A check's end is waited for this long after its timeout killed it, and
// its output this long after it ended: a process the check left behind
// (sh -c 'daemon &') may hold its output open for as long as it likes.
const (
	probeKillGrace   = time.Second
	probeOutputGrace = 100 * time.Millisecond
)

// probe runs the check once. ok is false when there was nothing to check
// (the container is not running any more). It returns by the check's
// timeout (and probeKillGrace), whatever the check left running.
func (s *Supervisor) probe(ctx context.Context, name string, args []string, timeout time.Duration) (p Probe, ok bool) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p.Start = time.Now().UTC()
	// The check writes to a pipe the probe reads itself: handed a file
	// rather than a writer, the runtime waits for the check's process
	// only, not for every process holding a copy of its output.
	r, wr, err := os.Pipe()
	if err != nil {
		p.End, p.ExitCode, p.Output = time.Now().UTC(), -1, err.Error()
		return p, true
	}
	defer r.Close()
	var out limitedBuffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		_, _ = io.Copy(&out, r)
	}()
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() {
		code, err := s.rt.Exec(pctx, name, container.ExecOptions{Args: args, Stdout: wr, Stderr: wr})
		wr.Close()
		res <- result{code, err}
	}()
	var code int
	select {
	case x := <-res:
		code, err = x.code, x.err
	case <-pctx.Done():
		// The runtime kills the check; it should say so at once.
		select {
		case x := <-res:
			code, err = x.code, x.err
		case <-time.After(probeKillGrace):
			code, err = -1, pctx.Err()
		}
	}
	if pctx.Err() == nil {
		// What the check wrote before it ended is in the pipe.
		select {
		case <-read:
		case <-time.After(probeOutputGrace):
		case <-pctx.Done():
		}
	}
	p.End = time.Now().UTC()
	switch {
	case ctx.Err() != nil:
		return p, false
	case errors.Is(pctx.Err(), context.DeadlineExceeded):
		p.ExitCode, p.Output = -1, fmt.Sprintf("health check timed out after %s", timeout)
	case errors.Is(err, resource.ErrConflict), errors.Is(err, resource.ErrNotFound):
		return p, false
	case err != nil:
		p.ExitCode, p.Output = -1, err.Error()
	default:
		p.ExitCode, p.Output = code, out.String()
	}
	return p, true
}

// recordProbe applies one result: a success makes the container healthy;
// retries failures in a row make it unhealthy, except failures during the
// start period while it is still starting, which do not count.
func (s *Supervisor) recordProbe(w *watch, c *checker, p Probe, startPeriod time.Duration, retries int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := w.rec.Health
	if w.health != c || h == nil {
		return // superseded meanwhile
	}
	h.Log = append(h.Log, p)
	if len(h.Log) > probesKept {
		h.Log = append([]Probe(nil), h.Log[len(h.Log)-probesKept:]...)
	}
	old := h.Status
	if p.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = HealthHealthy
	} else if h.Status != HealthStarting || !p.Start.Before(c.run.Add(startPeriod)) {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = HealthUnhealthy
		}
	}
	s.persist(w)
	if h.Status != old {
		msg := "health check passed"
		if h.Status == HealthUnhealthy {
			msg = fmt.Sprintf("health check failed %d times in a row (last: exit %d)", h.FailingStreak, p.ExitCode)
		}
		s.log.Info("container health "+h.Status, "container", w.name, "failing_streak", h.FailingStreak)
		s.emit(w.last, Event{Type: EventHealthStatus, Health: h.Status, Message: msg})
		s.signal()
	}
}

// limitedBuffer keeps the first probeOutputMax bytes written to it, from
// the check's stdout and stderr at once.
type limitedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := probeOutputMax - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
