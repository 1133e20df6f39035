package supervise

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"sync"
	"time"
)

// EventType says what happened to a container.
type EventType string

// The events berth reports, as docker events names them where Docker has
// one.
const (
	EventCreate       EventType = "create"        // it appeared on the host
	EventStart        EventType = "start"         // a new run began (not one its restart policy made)
	EventDie          EventType = "die"           // its init exited
	EventOOM          EventType = "oom"           // the kernel killed a process of it for memory
	EventRestart      EventType = "restart"       // its restart policy started it again
	EventHealthStatus EventType = "health_status" // its health check state changed
	EventDrift        EventType = "drift"         // it differs from what the state records; the next plan shows it
	EventStop         EventType = "stop"          // a person stopped it (emitted by the verbs)
	EventKill         EventType = "kill"          // a person signalled it (emitted by the verbs)
	EventDestroy      EventType = "destroy"       // it was removed from the host
)

// Event is one thing that happened to one container.
type Event struct {
	// Seq numbers the events of a host, without gaps, across agent
	// restarts (as far as the log kept them); Emit sets it.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"` // Emit sets it when zero
	Type EventType `json:"type"`
	// Container is its name; Owner its PROJECT/ADDRESS, empty for one
	// berth run made.
	Container string `json:"container"`
	Owner     string `json:"owner,omitempty"`
	Image     string `json:"image,omitempty"`
	// ExitCode and Signal: how the init ended (die), or the signal sent
	// (kill).
	ExitCode int    `json:"exit_code,omitempty"`
	Signal   string `json:"signal,omitempty"`
	// Health is the new state (health_status): starting, healthy or
	// unhealthy.
	Health string `json:"health,omitempty"`
	// RestartCount is how many times the restart policy restarted it
	// (restart, die).
	RestartCount int `json:"restart_count,omitempty"`
	// ByUser says a person did it (berth stop, kill, start, restart, rm).
	ByUser bool `json:"by_user,omitempty"`
	// Message says it in words.
	Message string `json:"message,omitempty"`
}

// Bus keeps recent events, hands them to subscribers and appends them to
// a log file, so that a subscriber asking for events since a time sees
// those from before an agent restart too.
type Bus struct {
	path    string
	maxSize int64

	mu      sync.Mutex
	seq     uint64
	history []Event // the newest last, at most size
	size    int
	subs    map[*subscriber]struct{}
	f       *os.File
	written int64
}

// Event logs are rotated once past this size into PATH.1 (one file kept).
const eventLogMax = 1 << 20

// NewBus makes a bus keeping the last size events in memory, and, when
// path is not empty, appending every event to the file path (rotated into
// path.1 past 1 MiB) and reading back the events already there.
func NewBus(path string, size int) (*Bus, error) {
	if size <= 0 {
		size = 1000
	}
	b := &Bus{path: path, maxSize: eventLogMax, size: size, subs: map[*subscriber]struct{}{}}
	if path == "" {
		return b, nil
	}
	for _, p := range []string{path + ".1", path} {
		if err := b.load(p); err != nil {
			return nil, err
		}
	}
	if err := b.open(); err != nil {
		return nil, err
	}
	return b, nil
}

// load reads an event log into the history, skipping a torn last line.
func (b *Bus) load(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e Event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		b.remember(e)
		b.seq = max(b.seq, e.Seq)
	}
	return sc.Err()
}

func (b *Bus) open() error {
	f, err := os.OpenFile(b.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	b.f, b.written = f, st.Size()
	return nil
}

func (b *Bus) remember(e Event) {
	if len(b.history) >= b.size {
		n := copy(b.history, b.history[len(b.history)-b.size+1:])
		b.history = b.history[:n]
	}
	b.history = append(b.history, e)
}

// Emit records e (giving it its sequence number, and the time when it has
// none), hands it to every subscriber and returns it as recorded. Writing
// the log is best effort: an event is never held back by a full disk.
func (b *Bus) Emit(e Event) Event {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Seq = b.seq
	b.remember(e)
	b.append(e)
	for s := range b.subs {
		if !s.push(e) {
			delete(b.subs, s)
		}
	}
	return e
}

func (b *Bus) append(e Event) {
	if b.f == nil {
		return
	}
	line, err := json.Marshal(e)
	if err != nil {
		return
	}
	line = append(line, '\n')
	if b.written+int64(len(line)) > b.maxSize && b.written > 0 {
		b.f.Close()
		b.f = nil
		if os.Rename(b.path, b.path+".1") != nil || b.open() != nil {
			return
		}
		b.written = 0
	}
	n, _ := b.f.Write(line)
	b.written += int64(n)
}

// History returns the events kept since t (inclusive), oldest first.
func (b *Bus) History(since time.Time) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.since(since)
}

func (b *Bus) since(t time.Time) []Event {
	var out []Event
	for _, e := range b.history {
		if !e.Time.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

// Subscribe returns the events kept since since (none when it is zero)
// followed by every event emitted from now on, in order and without a gap,
// until cancel is called. A subscriber that falls more than 10,000 events
// behind has its channel closed: subscribe again with the time of the last
// event it read.
func (b *Bus) Subscribe(since time.Time) (<-chan Event, func()) {
	s := &subscriber{out: make(chan Event), wake: make(chan struct{}, 1), stop: make(chan struct{})}
	b.mu.Lock()
	if !since.IsZero() {
		s.queue = b.since(since)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go s.forward()
	var once sync.Once
	return s.out, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
			close(s.stop)
		})
	}
}

// Close closes the event log; the bus goes on in memory.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		return nil
	}
	err := b.f.Close()
	b.f = nil
	return err
}

const maxQueued = 10000

// subscriber queues the events for one reader, so that a slow reader never
// holds up Emit.
type subscriber struct {
	mu     sync.Mutex
	queue  []Event
	closed bool
	out    chan Event
	wake   chan struct{}
	stop   chan struct{}
}

// push queues e and says whether the subscriber still listens.
func (s *subscriber) push(e Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if len(s.queue) >= maxQueued {
		s.closed = true
	} else {
		s.queue = append(s.queue, e)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return !s.closed
}

func (s *subscriber) forward() {
	defer close(s.out)
	for {
		s.mu.Lock()
		q, closed := s.queue, s.closed
		s.queue = nil
		s.mu.Unlock()
		for _, e := range q {
			select {
			case s.out <- e:
			case <-s.stop:
				return
			}
		}
		if closed {
			return
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-s.wake:
		case <-s.stop:
			return
		}
	}
}
