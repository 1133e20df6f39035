// Package supervise is the agent's supervisor: it watches every container
// on the host, whoever started it (an earlier agent, a berth command run
// without the agent), applies restart policies with Docker's semantics
// and back-off, runs health checks, reports exits, OOM kills and drift as
// events, and keeps what it must remember across agent restarts (restart
// counts, the last exit it handled, health) in one small file per
// container. It repairs nothing the configuration does not ask for: a
// container stopped or removed behind berth's back without a restart
// policy is reported, and the next plan shows it.
//
// It sees containers through Runtime, which the container driver
// implements; the agent wires the two together. Only agent imports it
// (and berth commands, for ReadState).
package supervise

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/resource"
)

// Runtime is what the supervisor needs of the containers on the host.
type Runtime interface {
	List(ctx context.Context) ([]container.Info, error)
	Inspect(ctx context.Context, name string) (container.Info, error)
	// Start starts again the init of an exited container.
	Start(ctx context.Context, name string) error
	// StartUnlessStoppedByUser is Start unless a person stopped the
	// container (container.ErrStoppedByUser), checked where the stop
	// sets its mark: what a restart policy starts.
	StartUnlessStoppedByUser(ctx context.Context, name string) error
	// Exited is closed once the monitor of the container's current init
	// recorded its exit.
	Exited(id string) (<-chan struct{}, error)
	Exec(ctx context.Context, name string, o container.ExecOptions) (int, error)
	// Remove deletes a container (berth run --rm -d ones, once they
	// exited).
	Remove(ctx context.Context, name string, force bool) (container.Info, error)
}

var _ Runtime = (*container.Driver)(nil)

// Config configures a Supervisor.
type Config struct {
	// Dir keeps the per-container records (Dir/containers/NAME.json)
	// and the event log (Dir/events.jsonl). Required.
	Dir string
	// Recorded lists the containers the state store records: container
	// name → owner (PROJECT/ADDRESS). The supervisor compares it with the
	// host to report containers removed outside berth; nil skips that.
	Recorded func(ctx context.Context) (map[string]string, error)
	// Logger receives the supervisor's structured log; nil discards it.
	Logger *slog.Logger
	// ScanInterval is how often the host's containers are listed to pick
	// up new ones and changes the exit watches do not see (Poke scans at
	// once).
	ScanInterval time.Duration
	// DriftInterval is how often Recorded is compared with the host; a
	// container is reported removed once it was missing twice in a row,
	// so that an apply's delete between its driver call and its state
	// write is not taken for drift.
	DriftInterval time.Duration
	// HistorySize is how many events are kept in memory for Subscribe.
	HistorySize int
}

// DefaultConfig is the supervisor of an agent whose state directory is
// stateDir.
func DefaultConfig(stateDir string) Config {
	return Config{
		Dir:           filepath.Join(stateDir, "supervise"),
		ScanInterval:  time.Second,
		DriftInterval: 2 * time.Second,
		HistorySize:   1000,
	}
}

// Supervisor watches the containers of a host. Make it with New, run it
// with Run; Health, State, Subscribe and Emit may be called at any time
// from any goroutine.
type Supervisor struct {
	cfg  Config
	rt   Runtime
	log  *slog.Logger
	bus  *Bus
	poke chan struct{}

	// started is when Run began: exits before it happened while no
	// supervisor ran.
	started time.Time
	// missing counts, for each recorded container absent from the host,
	// the drift checks that found it so, up to missingDealt (Run's
	// goroutine only).
	missing map[string]int
	// scanned is set after Run's first scan: containers found later are
	// new (create events).
	scanned bool

	mu      sync.Mutex
	watches map[string]*watch
	// changed is closed (and replaced) whenever a container's state
	// changes, for WaitHealthy.
	changed chan struct{}
	// destroyed holds the containers a person removed (Acted), whose
	// destroy event is already out, and when.
	destroyed map[string]time.Time
}

// watch is one container under supervision: a goroutine that waits for
// its exit, and the record it keeps.
type watch struct {
	name  string
	nudge chan struct{}
	stop  context.CancelFunc
	done  chan struct{}

	// Guarded by Supervisor.mu.
	rec   *record
	last  container.Info // as last inspected
	seen  bool           // last is set
	first bool           // not looked at yet by this supervisor
	// adopted: on the host when the supervisor started, so no process
	// of this agent waits for it (berth run --rm -d).
	adopted bool
	health  *checker
	// idle: the goroutine acted on last and waits for a change.
	idle bool
}

// New makes a supervisor over rt; it does nothing until Run.
func New(rt Runtime, cfg Config) (*Supervisor, error) {
	if cfg.Dir == "" {
		return nil, errors.New("supervise: Config.Dir must be set")
	}
	def := DefaultConfig(filepath.Dir(cfg.Dir))
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = def.ScanInterval
	}
	if cfg.DriftInterval <= 0 {
		cfg.DriftInterval = def.DriftInterval
	}
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = def.HistorySize
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(recordDir(cfg.Dir), 0o700); err != nil {
		return nil, fmt.Errorf("supervise: %w", err)
	}
	bus, err := NewBus(filepath.Join(cfg.Dir, "events.jsonl"), cfg.HistorySize)
	if err != nil {
		return nil, fmt.Errorf("supervise: event log: %w", err)
	}
	return &Supervisor{
		cfg: cfg, rt: rt, log: log, bus: bus,
		poke:      make(chan struct{}, 1),
		missing:   map[string]int{},
		watches:   map[string]*watch{},
		changed:   make(chan struct{}),
		destroyed: map[string]time.Time{},
	}, nil
}

// Events is the host's event bus.
func (s *Supervisor) Events() *Bus { return s.bus }

// Emit records an event (a person's stop, kill or start, from the verbs)
// and hands it to the subscribers.
func (s *Supervisor) Emit(e Event) Event { return s.bus.Emit(e) }

// Subscribe is Events().Subscribe.
func (s *Supervisor) Subscribe(since time.Time) (<-chan Event, func()) {
	return s.bus.Subscribe(since)
}

// Close closes the event log. Call it after Run returned.
func (s *Supervisor) Close() error { return s.bus.Close() }

// Acted records what a person did to a container (the verbs: stop, kill,
// start, restart, rm; Type says which) as an event marked ByUser, and
// makes the supervisor look at the containers at once. It returns the
// event as recorded.
func (s *Supervisor) Acted(e Event) Event {
	e.ByUser = true
	if e.Type == EventDestroy {
		s.mu.Lock()
		s.destroyed[e.Container] = time.Now()
		s.mu.Unlock()
	}
	e = s.bus.Emit(e)
	s.Poke()
	return e
}

// Poke makes the supervisor look at the host's containers now rather than
// at its next scan: after an apply or a berth start made or started some.
func (s *Supervisor) Poke() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Run supervises the host's containers until ctx ends. Containers keep
// running when it returns; the next Run (in this agent or the next)
// adopts them again.
func (s *Supervisor) Run(ctx context.Context) error {
	s.started = time.Now()
	s.log.Info("supervisor started", "dir", s.cfg.Dir)
	defer s.stopAll()
	s.scan(ctx)
	s.checkRemoved(ctx)
	scan := time.NewTicker(s.cfg.ScanInterval)
	defer scan.Stop()
	drift := time.NewTicker(s.cfg.DriftInterval)
	defer drift.Stop()
	for {
		select {
		case <-ctx.Done():
			s.log.Info("supervisor stopped; containers keep running")
			return nil
		case <-scan.C:
			s.scan(ctx)
		case <-s.poke:
			s.scan(ctx)
		case <-drift.C:
			s.checkRemoved(ctx)
		}
	}
}

func (s *Supervisor) stopAll() {
	s.mu.Lock()
	all := make([]*watch, 0, len(s.watches))
	for _, w := range s.watches {
		all = append(all, w)
	}
	s.mu.Unlock()
	for _, w := range all {
		w.stop()
	}
	for _, w := range all {
		<-w.done
	}
}

// scan lists the host's containers: it starts watching new ones, nudges
// those whose state changed in a way their watch does not see, and
// forgets those that are gone (with their records).
func (s *Supervisor) scan(ctx context.Context) {
	infos, err := s.rt.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("listing containers", "error", err)
		}
		return
	}
	seen := make(map[string]bool, len(infos))
	var gone []*watch
	s.mu.Lock()
	for _, in := range infos {
		seen[in.Name] = true
		w := s.watches[in.Name]
		if w != nil && w.ended() {
			// Its goroutine saw the container gone (or removed it), and
			// the name holds a container again: an apply replaced it, or
			// rm -f and run --name came between two scans.
			delete(s.watches, in.Name)
			gone = append(gone, w)
			same := w.seen && w.last.Created.Equal(in.Created)
			if _, told := s.destroyed[in.Name]; !told && w.seen && !same {
				s.emit(w.last, Event{Type: EventDestroy, Message: "removed from the host"})
			}
			s.startWatch(ctx, in, !same)
			continue
		}
		if w == nil {
			s.startWatch(ctx, in, true)
			continue
		}
		if w.seen && !sameLook(w.last, in) {
			select {
			case w.nudge <- struct{}{}:
			default:
			}
		}
	}
	for name, w := range s.watches {
		if !seen[name] {
			delete(s.watches, name)
			gone = append(gone, w)
			if _, told := s.destroyed[name]; !told && w.seen {
				s.emit(w.last, Event{Type: EventDestroy, Message: "removed from the host"})
			}
		}
	}
	for name, t := range s.destroyed {
		if time.Since(t) > time.Minute {
			delete(s.destroyed, name)
		}
	}
	if len(gone) > 0 {
		s.signal()
	}
	s.scanned = true
	s.mu.Unlock()
	for _, w := range gone {
		w.stop()
		<-w.done
		s.log.Info("container gone", "container", w.name)
	}
	s.pruneRecords(seen)
}

// sameLook says whether two views of a container differ in nothing the
// supervisor acts on.
func sameLook(a, b container.Info) bool {
	return a.Status == b.Status && a.Pid == b.Pid && a.Created.Equal(b.Created) &&
		a.StartedAt.Equal(b.StartedAt) && a.FinishedAt.Equal(b.FinishedAt) &&
		a.StoppedByUser == b.StoppedByUser && a.Monitored == b.Monitored &&
		a.Restart == b.Restart && reflect.DeepEqual(a.Healthcheck, b.Healthcheck)
}

// startWatch starts supervising a container, with its record when an
// earlier supervisor left one for this very container, and announces it
// when it is new (after the first scan, and if announce). s.mu is held.
func (s *Supervisor) startWatch(ctx context.Context, in container.Info, announce bool) {
	rec, err := readRecord(s.cfg.Dir, in.Name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("starting the container's record afresh", "container", in.Name, "error", err)
	}
	if err != nil || !rec.Created.Equal(in.Created) {
		rec = &record{Name: in.Name, Created: in.Created}
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &watch{name: in.Name, nudge: make(chan struct{}, 1), stop: cancel, done: make(chan struct{}), rec: rec, first: true, adopted: !s.scanned}
	s.watches[in.Name] = w
	delete(s.destroyed, in.Name)
	if s.scanned && announce {
		s.announce(in)
	}
	s.signal()
	go s.supervise(wctx, w)
}

// ended says whether the watch's goroutine returned by itself: the
// container was gone when it looked.
func (w *watch) ended() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// pruneRecords removes the records of containers no longer on the host.
func (s *Supervisor) pruneRecords(present map[string]bool) {
	entries, err := os.ReadDir(recordDir(s.cfg.Dir))
	if err != nil {
		return
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") || present[name] {
			continue
		}
		s.mu.Lock()
		_, watched := s.watches[name]
		s.mu.Unlock()
		if !watched {
			_ = removeRecord(s.cfg.Dir, name)
		}
	}
}

// announce reports a container new on the host. s.mu is held.
func (s *Supervisor) announce(in container.Info) {
	s.emit(in, Event{Time: in.Created, Type: EventCreate})
	if in.Status == container.StatusRunning || in.Status == container.StatusExited {
		s.emit(in, Event{Time: in.StartedAt, Type: EventStart})
	}
}

// emit sends an event about the container in.
func (s *Supervisor) emit(in container.Info, e Event) {
	e.Container, e.Owner, e.Image = in.Name, in.Owner, in.Image
	s.bus.Emit(e)
}

// signal wakes WaitHealthy callers. s.mu is held.
func (s *Supervisor) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// persist writes the container's record, unless the container stopped
// being watched (it was removed: its record goes with it). s.mu is held.
func (s *Supervisor) persist(w *watch) {
	if s.watches[w.name] != w {
		return
	}
	if err := writeRecord(s.cfg.Dir, w.rec); err != nil {
		s.log.Error("writing the supervisor record", "container", w.name, "error", err)
	}
}

// supervise is the life of one watch: look at the container, act, wait
// for its exit, a due restart or a nudge, and look again.
func (s *Supervisor) supervise(ctx context.Context, w *watch) {
	defer close(w.done)
	defer s.stopHealth(w)
	var exitedPid int // the init whose exit the last wait saw
	for {
		in, err := s.rt.Inspect(ctx, w.name)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, resource.ErrNotFound) {
			return // the next scan forgets it
		}
		var exited <-chan struct{}
		var due <-chan time.Time
		var timer *time.Timer
		if err != nil {
			s.log.Warn("inspecting a container", "container", w.name, "error", err)
		} else {
			first := s.look(w, in)
			switch in.Status {
			case container.StatusRunning:
				s.running(ctx, w, in)
				// A monitor that died before its init leaves nothing to
				// wait on: the scans notice the exit.
				if in.Monitored && in.Pid != exitedPid {
					ch, err := s.rt.Exited(in.ID)
					if err != nil {
						s.log.Warn("watching a container's exit", "container", w.name, "error", err)
					}
					exited = ch
				}
			case container.StatusExited:
				s.stopHealth(w)
				at, ok, remove := s.exited(w, in, first)
				if remove && s.remove(ctx, w) {
					return // the next scan forgets it
				}
				if ok {
					if d := time.Until(at); d > 0 {
						timer = time.NewTimer(d)
						due = timer.C
					} else {
						s.restart(ctx, w)
						continue
					}
				}
			}
		}
		s.setIdle(w, true)
		select {
		case <-ctx.Done():
		case <-exited:
			exitedPid = in.Pid
		case <-due:
		case <-w.nudge:
		}
		s.setIdle(w, false)
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (s *Supervisor) setIdle(w *watch, idle bool) {
	s.mu.Lock()
	w.idle = idle
	s.mu.Unlock()
}

// look records what an inspection saw, starts a new record when the name
// now holds another container, and says whether it is the supervisor's
// first look at it.
func (s *Supervisor) look(w *watch, in container.Info) (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, seen := w.last, w.seen
	w.last, w.seen = in, true
	first, w.first = w.first, false
	if !w.rec.Created.Equal(in.Created) {
		// Replaced (an apply, or berth rm and berth run) between looks.
		if seen {
			s.emit(prev, Event{Type: EventDestroy, Message: "removed from the host"})
			s.announce(in)
		}
		w.rec = &record{Name: in.Name, Created: in.Created}
		w.adopted = false
		s.persist(w)
	}
	s.signal()
	return first
}

// running notes a container seen running: a restart decided earlier has
// happened, and its health check runs for this run.
func (s *Supervisor) running(ctx context.Context, w *watch, in container.Info) {
	s.mu.Lock()
	rec := w.rec
	if rec.Pending != nil {
		// Made by this supervisor, by one that died before recording
		// it, or by a person during the back-off.
		rec.Pending = nil
		rec.LastStart = in.StartedAt
		s.persist(w)
	}
	c := w.health
	stale := c != nil && (in.Healthcheck == nil || !reflect.DeepEqual(c.spec, *in.Healthcheck) || !c.run.Equal(in.StartedAt))
	if in.Healthcheck == nil && rec.Health != nil {
		rec.Health, rec.HealthRun = nil, time.Time{}
		s.persist(w)
		s.signal()
	}
	s.mu.Unlock()
	if stale {
		s.stopHealth(w)
		c = nil
	}
	if in.Healthcheck != nil && c == nil {
		s.startHealth(ctx, w, in)
	}
}

// exited handles the container's last exit once, and says when a restart
// is due, if one is, or that the container is to be removed.
func (s *Supervisor) exited(w *watch, in container.Info, first bool) (due time.Time, restart, remove bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := w.rec
	p := ParsePolicy(in.Restart)
	if autoRemove(in) {
		// berth run --rm: never restarted. Removed here only when no
		// process of this agent waits for it (it was on the host before
		// the supervisor started); otherwise berth run removes it.
		if !rec.handled(in.StartedAt, in.FinishedAt) {
			s.handleExit(w, in, Policy{Name: "no"}, first)
		}
		return time.Time{}, false, w.adopted
	}
	switch {
	case !rec.handled(in.StartedAt, in.FinishedAt):
		s.handleExit(w, in, p, first)
	case first && p.Name == "always" && in.StoppedByUser && rec.Pending == nil:
		rec.Pending = &pending{At: time.Now(), Forced: true}
		s.log.Info(`starting a container stopped by a person: restart = "always" brings it back when the agent starts, as Docker does`, "container", w.name)
		s.persist(w)
	case rec.Pending != nil && in.StoppedByUser && !rec.Pending.Forced:
		rec.Pending = nil
		s.log.Info("restart cancelled: the container was stopped by a person", "container", w.name)
		s.persist(w)
		s.signal()
	}
	if rec.Pending == nil {
		return time.Time{}, false, false
	}
	return rec.Pending.At, true, false
}

func autoRemove(in container.Info) bool { return in.Labels[resource.AutoRemoveLabel] == "true" }

// remove deletes an exited berth run --rm container, and says whether it
// is gone.
func (s *Supervisor) remove(ctx context.Context, w *watch) bool {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	in, err := s.rt.Remove(rctx, w.name, false)
	switch {
	case err == nil:
		s.log.Info("removed a berth run --rm container that exited", "container", w.name)
		s.mu.Lock()
		s.destroyed[w.name] = time.Now()
		s.emit(in, Event{Type: EventDestroy, Message: "removed once it exited (berth run --rm)"})
		s.mu.Unlock()
		return true
	case errors.Is(err, resource.ErrNotFound):
		return true
	}
	if ctx.Err() == nil {
		s.log.Warn("removing a berth run --rm container", "container", w.name, "error", err)
	}
	return false
}

// handleExit reports an exit not handled yet and applies the restart
// policy. s.mu is held.
func (s *Supervisor) handleExit(w *watch, in container.Info, p Policy, first bool) {
	rec := w.rec
	lost := in.FinishedAt.IsZero() // its monitor died before the init
	code := in.ExitCode
	if lost {
		code = 255
	}
	if !in.StartedAt.Equal(rec.LastStart) {
		// A run the supervisor did not make (a person's start, or the
		// container's first): the count starts again, as docker start
		// does.
		rec.RestartCount = 0
	}
	var ran time.Duration
	if !lost && !in.StartedAt.IsZero() {
		ran = in.FinishedAt.Sub(in.StartedAt)
	}
	rec.Backoff = nextBackoff(rec.Backoff, ran)
	rec.HandledStarted, rec.HandledFinished = in.StartedAt, in.FinishedAt
	restart, why := decide(p, exitFacts{code: code, stoppedByUser: in.StoppedByUser, restarts: rec.RestartCount, agentStart: first})

	msg := fmt.Sprintf("exited with code %d", code)
	switch {
	case lost:
		msg = "exited; its exit status was lost (its monitor was killed)"
	case in.ExitSignal != "":
		msg += " (" + in.ExitSignal + ")"
	}
	if in.OOMKilled {
		msg += ", out of memory"
	}
	if first && !lost && in.FinishedAt.Before(s.started) {
		msg += fmt.Sprintf(", at %s while no agent ran", in.FinishedAt.Local().Format(time.RFC3339))
	}
	restarts := rec.RestartCount
	if restart {
		rec.RestartCount++
		base := in.FinishedAt
		if lost {
			base = time.Now()
		}
		rec.Pending = &pending{At: base.Add(rec.Backoff), Forced: in.StoppedByUser}
	}
	// Recorded before it is told: whoever reacts to the events reads
	// the new state.
	s.persist(w)
	s.signal()

	attrs := []any{"container", w.name, "exit_code", code, "policy", p.String()}
	if in.OOMKilled {
		s.emit(in, Event{Type: EventOOM, Message: "a process was killed by the kernel: out of memory"})
		attrs = append(attrs, "oom_killed", true)
	}
	s.emit(in, Event{Type: EventDie, ExitCode: code, Signal: in.ExitSignal, RestartCount: restarts, Message: msg})
	if restart {
		s.log.Info("container "+msg+": restarting it", append(attrs, "restart_count", rec.RestartCount, "backoff", rec.Backoff)...)
		return
	}
	s.log.Info("container "+msg+": leaving it stopped, as "+why, attrs...)
	if declared(in) && !in.StoppedByUser {
		m := fmt.Sprintf("container %s %s and stays stopped (%s): the next berth apply starts it again", w.name, msg, why)
		s.log.Warn("drift: "+m, "container", w.name, "owner", in.Owner)
		s.emit(in, Event{Type: EventDrift, ExitCode: code, Message: m})
	}
}

// restart starts the container again if the restart decided for it is
// still wanted: it is still the same container, still exited, and no
// person stopped it meanwhile.
func (s *Supervisor) restart(ctx context.Context, w *watch) {
	in, err := s.rt.Inspect(ctx, w.name)
	if err != nil {
		return
	}
	s.mu.Lock()
	rec, p := w.rec, w.rec.Pending
	if p == nil || in.Status != container.StatusExited || !in.Created.Equal(rec.Created) {
		s.mu.Unlock()
		return
	}
	if in.StoppedByUser && !p.Forced {
		rec.Pending = nil
		s.persist(w)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()

	// A start begun goes to its end even when the agent stops.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	// Only the forced start of "always" with the agent overrules a
	// person's stop; any other restart yields to a stop made since the
	// inspection above.
	if p.Forced {
		err = s.rt.Start(sctx, w.name)
	} else {
		err = s.rt.StartUnlessStoppedByUser(sctx, w.name)
	}
	var started container.Info
	if err == nil {
		started, _ = s.rt.Inspect(sctx, w.name)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	policy := ParsePolicy(in.Restart)
	switch {
	case err == nil:
		rec.Pending = nil
		rec.LastStart = started.StartedAt
		s.persist(w)
		s.signal()
		msg := fmt.Sprintf("restarted by its restart policy (%s): restart %d, after a %s back-off", policy, rec.RestartCount, rec.Backoff)
		if p.Forced {
			msg = fmt.Sprintf("started with the agent: restart = %q brings back a container a person stopped, as Docker does", policy.String())
		}
		s.log.Info("container "+msg, "container", w.name, "restart_count", rec.RestartCount)
		s.emit(in, Event{Type: EventRestart, RestartCount: rec.RestartCount, Message: msg})
		return
	case errors.Is(err, container.ErrStoppedByUser):
		rec.Pending = nil
		s.log.Info("restart cancelled: the container was stopped by a person", "container", w.name)
	case errors.Is(err, resource.ErrConflict), errors.Is(err, resource.ErrNotFound):
		// Started by someone else meanwhile, or removed.
		rec.Pending = nil
	default:
		rec.Backoff = nextBackoff(rec.Backoff, 0)
		if policy.MaxRetries > 0 && rec.RestartCount >= policy.MaxRetries {
			rec.Pending = nil
			s.log.Error("restarting the container failed; giving up after its restart limit", "container", w.name, "error", err)
			break
		}
		if !p.Forced {
			rec.RestartCount++
		}
		rec.Pending = &pending{At: time.Now().Add(rec.Backoff), Forced: p.Forced}
		s.log.Error("restarting the container failed; trying again", "container", w.name, "error", err, "backoff", rec.Backoff)
	}
	s.persist(w)
	s.signal()
}

// declared says whether a project's configuration declares the
// container (not berth run's).
func declared(in container.Info) bool {
	return in.Owner != "" && !strings.HasPrefix(in.Owner, resource.RunProject+"/")
}

// missingDealt is Supervisor.missing's count of a recorded container
// whose absence was reported, or was berth's own doing (Acted destroy):
// nothing more is said of it until it is on the host again or no longer
// recorded.
const missingDealt = 2

// checkRemoved reports recorded containers that are no longer on the host
// and that berth did not remove: a person's berth rm is told by Acted,
// and an apply's delete removes the record right after the container
// (a container is reported once missing twice in a row).
func (s *Supervisor) checkRemoved(ctx context.Context) {
	if s.cfg.Recorded == nil {
		return
	}
	recorded, err := s.cfg.Recorded(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("reading the recorded containers", "error", err)
		}
		return
	}
	infos, err := s.rt.List(ctx)
	if err != nil {
		return
	}
	present := make(map[string]bool, len(infos))
	for _, in := range infos {
		present[in.Name] = true
	}
	for name := range s.missing {
		if _, ok := recorded[name]; !ok || present[name] {
			delete(s.missing, name)
		}
	}
	s.mu.Lock()
	for name := range recorded {
		// Removed through berth (berth rm, told by Acted): not drift,
		// however long the state still records it.
		if _, told := s.destroyed[name]; told && !present[name] {
			s.missing[name] = missingDealt
		}
	}
	s.mu.Unlock()
	for name, owner := range recorded {
		if present[name] {
			continue
		}
		switch s.missing[name] {
		case 0:
			s.missing[name] = 1
		case 1:
			s.missing[name] = missingDealt
			m := fmt.Sprintf("container %s was removed outside berth: the next berth plan shows it missing, and apply creates it again", name)
			s.log.Warn("drift: "+m, "container", name, "owner", owner)
			s.bus.Emit(Event{Type: EventDrift, Container: name, Owner: owner, Message: m})
		}
	}
}

// State is what the supervisor knows of the container name, if it
// watches it.
func (s *Supervisor) State(name string) (State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.watches[name]
	if w == nil {
		return State{}, false
	}
	return w.rec.state(), true
}

// Health is the health of the container name, if it has a health check
// and the supervisor watches it.
func (s *Supervisor) Health(name string) (Health, bool) {
	st, ok := s.State(name)
	if !ok || st.Health == nil {
		return Health{}, false
	}
	return *st.Health, true
}

// ErrUnhealthy is what WaitHealthy returns for a container that became
// unhealthy, or stopped for good, instead of healthy.
var ErrUnhealthy = errors.New("unhealthy")

// WaitHealthy waits until the container name is healthy. It fails with an
// error wrapping ErrUnhealthy once the container is unhealthy or exited
// with no restart to come, one wrapping resource.ErrInvalid when it has no
// health check, and ctx's error when ctx ends first. A container not
// watched yet (just made) is waited for.
func (s *Supervisor) WaitHealthy(ctx context.Context, name string) error {
	for {
		s.mu.Lock()
		w, changed := s.watches[name], s.changed
		var err error
		done := false
		if w != nil && w.seen {
			rec := w.rec
			switch {
			case w.last.Healthcheck == nil:
				err, done = resource.Errorf(resource.ErrInvalid, "container %s has no healthcheck to wait for", name), true
			case w.last.Status == container.StatusExited && rec.Pending == nil && rec.handled(w.last.StartedAt, w.last.FinishedAt):
				err, done = fmt.Errorf("container %s exited with code %d and is not restarted: %w", name, w.last.ExitCode, ErrUnhealthy), true
			case w.last.Status == container.StatusRunning && rec.Health != nil && rec.HealthRun.Equal(w.last.StartedAt):
				switch rec.Health.Status {
				case HealthHealthy:
					done = true
				case HealthUnhealthy:
					err, done = fmt.Errorf("container %s is unhealthy: %w", name, ErrUnhealthy), true
				}
			}
		}
		s.mu.Unlock()
		if done {
			return err
		}
		if w == nil {
			s.Poke()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for container %s to be healthy: %w", name, ctx.Err())
		case <-changed:
		}
	}
}
