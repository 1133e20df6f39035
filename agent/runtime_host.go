package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seed-e88ffcd2/berth/agent/supervise"
	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/internal/logfile"
	"github.com/seed-e88ffcd2/berth/resource"
	"golang.org/x/sys/unix"
)

// HostRuntime is the Runtime of a host opened in this process: the
// container driver, and the agent's supervisor when this process is the
// agent (Host.SetSupervisor). Without one, health and restarts come from
// the records the last agent's supervisor left, and events from looking
// at the containers.
type HostRuntime struct {
	h *Host
	// poll is how often events are looked for without a supervisor.
	poll time.Duration
}

var _ Runtime = (*HostRuntime)(nil)

// Runtime is the host's Runtime, for the verbs run in this process and
// the agent's API.
func (h *Host) Runtime() *HostRuntime { return &HostRuntime{h: h, poll: 500 * time.Millisecond} }

// SetSupervisor tells the host that s supervises its containers: the
// verbs report what a person did to it (a stop is not a crash, a start is
// watched again), and read health, restarts and events from it.
func (h *Host) SetSupervisor(s *supervise.Supervisor) {
	h.supMu.Lock()
	defer h.supMu.Unlock()
	h.sup = s
}

func (h *Host) supervisor() *supervise.Supervisor {
	h.supMu.Lock()
	defer h.supMu.Unlock()
	return h.sup
}

func (r *HostRuntime) describe(in container.Info) Container {
	c := Container{Info: in}
	var (
		st supervise.State
		ok bool
	)
	if sup := r.h.supervisor(); sup != nil {
		st, ok = sup.State(in.Name)
	} else if r.h.superviseDir != "" {
		var err error
		st, err = supervise.ReadState(r.h.superviseDir, in.Name)
		ok = err == nil
	}
	if !ok && r.h.supervisor() == nil {
		return c // never supervised; with an agent, just made
	}
	c.RestartCount = st.RestartCount
	c.Restarting = in.Status == container.StatusExited && !st.RestartingAt.IsZero()
	if c.Restarting {
		c.Status = StatusRestarting
	}
	// The health of this run: a run just started is "starting" until
	// the supervisor checks it, whatever the last one was.
	if h := st.HealthOf(in); h != nil {
		c.Health, c.HealthCheck = h.Status, h
	}
	return c
}

func (r *HostRuntime) acted(c Container, what supervise.EventType, signal string) {
	if sup := r.h.supervisor(); sup != nil {
		sup.Acted(Event{Type: what, Container: c.Name, Owner: c.Owner, Image: c.Image, Signal: signal})
	}
}

// List implements Runtime.
func (r *HostRuntime) List(ctx context.Context, all bool) ([]Container, error) {
	infos, err := r.h.containers.List(ctx)
	if err != nil {
		return nil, err
	}
	out := []Container{}
	for _, in := range infos {
		c := r.describe(in)
		if all || c.Status == container.StatusRunning || c.Restarting {
			out = append(out, c)
		}
	}
	return out, nil
}

// Inspect implements Runtime.
func (r *HostRuntime) Inspect(ctx context.Context, name string) (Container, error) {
	in, err := r.h.containers.Inspect(ctx, name)
	if err != nil {
		return Container{}, err
	}
	return r.describe(in), nil
}

// Start implements Runtime.
func (r *HostRuntime) Start(ctx context.Context, name string) (Container, error) {
	if err := r.h.containers.Start(ctx, name); err != nil {
		return Container{}, err
	}
	c, err := r.Inspect(ctx, name)
	if err == nil {
		r.acted(c, ActionStart, "")
	}
	return c, err
}

// Stop implements Runtime.
func (r *HostRuntime) Stop(ctx context.Context, name string, timeout time.Duration) (Container, error) {
	if err := r.h.containers.Stop(ctx, name, timeout, true); err != nil {
		return Container{}, err
	}
	c, err := r.Inspect(ctx, name)
	if err == nil {
		r.acted(c, ActionStop, "")
	}
	return c, err
}

// Restart implements Runtime.
func (r *HostRuntime) Restart(ctx context.Context, name string, timeout time.Duration) (Container, error) {
	if err := r.h.containers.Stop(ctx, name, timeout, true); err != nil {
		return Container{}, err
	}
	if err := r.h.containers.Start(ctx, name); err != nil {
		return Container{}, err
	}
	c, err := r.Inspect(ctx, name)
	if err == nil {
		r.acted(c, ActionRestart, "")
	}
	return c, err
}

// Kill implements Runtime.
func (r *HostRuntime) Kill(ctx context.Context, name, signal string) (Container, error) {
	sig, err := ParseSignal(signal)
	if err != nil {
		return Container{}, err
	}
	in, err := r.h.containers.Inspect(ctx, name)
	if err != nil {
		return Container{}, err
	}
	if err := r.h.containers.Kill(ctx, name, sig, stops(sig, in.StopSignal)); err != nil {
		return Container{}, err
	}
	c, err := r.Inspect(ctx, name)
	if err == nil {
		r.acted(c, ActionKill, unix.SignalName(sig))
	}
	return c, err
}

// stops tells whether a person sending sig means to stop the container,
// which its restart policy must then not overrule: KILL, TERM, INT, QUIT
// or its own stop signal. After HUP or USR1 (reload, reopen logs) a crash
// is still a crash.
func stops(sig syscall.Signal, stopSignal string) bool {
	switch sig {
	case unix.SIGKILL, unix.SIGTERM, unix.SIGINT, unix.SIGQUIT:
		return true
	}
	own, err := ParseSignal(stopSignal)
	return stopSignal != "" && err == nil && own == sig
}

// ParseSignal reads a signal as berth kill -s takes it: a name with or
// without SIG, in any case (KILL, sigterm, SIGHUP), or a number.
func ParseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return unix.SIGKILL, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, resource.Errorf(resource.ErrInvalid, "signal %d: a signal number is between 1 and 64", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, resource.Errorf(resource.ErrInvalid, "signal %q: give a name such as KILL, TERM, HUP, INT, USR1 (with or without SIG) or a number", s)
}

// Remove implements Runtime.
func (r *HostRuntime) Remove(ctx context.Context, name string, force bool) (Container, error) {
	in, err := r.h.containers.Remove(ctx, name, force)
	if err != nil {
		return Container{}, err
	}
	c := Container{Info: in}
	r.acted(c, ActionDestroy, "")
	return c, nil
}

// Top implements Runtime: the processes of the container's cgroup, read
// from the host's /proc.
func (r *HostRuntime) Top(ctx context.Context, name string) ([]Process, error) {
	pids, err := r.h.containers.Processes(ctx, name)
	if err != nil {
		return nil, err
	}
	users := map[int]string{}
	out := []Process{}
	for _, pid := range pids {
		p, err := readProcess(pid)
		if err != nil {
			continue // gone meanwhile
		}
		if _, ok := users[p.UID]; !ok {
			users[p.UID] = strconv.Itoa(p.UID)
			if u, err := user.LookupId(users[p.UID]); err == nil {
				users[p.UID] = u.Username
			}
		}
		p.User = users[p.UID]
		out = append(out, p)
	}
	return out, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture berth runs on.
const clockTicks = 100

func readProcess(pid int) (Process, error) {
	p := Process{PID: pid}
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return p, err
	}
	// pid (comm) state ppid … utime(14) stime(15): comm may hold spaces
	// and parentheses, so fields are counted after its last ')'.
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return p, fmt.Errorf("%s/stat: unexpected format", dir)
	}
	comm := s[open+1 : end]
	fields := strings.Fields(s[end+1:])
	if len(fields) < 13 {
		return p, fmt.Errorf("%s/stat: unexpected format", dir)
	}
	p.PPID, _ = strconv.Atoi(fields[1])
	utime, _ := strconv.ParseUint(fields[11], 10, 64)
	stime, _ := strconv.ParseUint(fields[12], 10, 64)
	p.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	if status, err := os.ReadFile(dir + "/status"); err == nil {
		for line := range strings.Lines(string(status)) {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					p.UID, _ = strconv.Atoi(f[0])
				}
			}
		}
	}
	cmdline, _ := os.ReadFile(dir + "/cmdline")
	p.Command = strings.TrimSpace(strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "))
	if p.Command == "" {
		p.Command = "[" + comm + "]"
	}
	return p, nil
}

// Stats implements Runtime.
func (r *HostRuntime) Stats(ctx context.Context, name string, stream bool) (Stream[Stats], error) {
	prev, err := r.sample(ctx, name)
	if errors.Is(err, resource.ErrConflict) {
		// Not running: one sample of zeros, as docker stats shows a
		// stopped container, and the stream ends.
		if _, ierr := r.h.containers.Inspect(ctx, name); ierr != nil {
			return nil, ierr
		}
		return &sliceStream[Stats]{vals: []Stats{{Name: name, Time: time.Now().UTC()}}}, nil
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan item[Stats])
	go func() {
		defer close(ch)
		// The first sample measures a short interval, so that one
		// without streaming answers soon; the others a second each.
		wait := 500 * time.Millisecond
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = time.Second
			cur, err := r.sample(ctx, name)
			if errors.Is(err, resource.ErrConflict) {
				return // it stopped: the stream ends
			} else if err != nil {
				send(ctx, ch, item[Stats]{err: err})
				return
			}
			cur.s.CPUPercent = cpuPercent(prev, cur)
			if !send(ctx, ch, item[Stats]{v: cur.s}) || !stream {
				return
			}
			prev = cur
		}
	}()
	return &chanStream[Stats]{ch: ch, cancel: cancel}, nil
}

type sample struct {
	s    Stats
	wall time.Time // monotonic, for the CPU interval
}

func cpuPercent(prev, cur sample) float64 {
	wall := cur.wall.Sub(prev.wall)
	if wall <= 0 || cur.s.CPUTotal < prev.s.CPUTotal {
		return 0
	}
	return float64(cur.s.CPUTotal-prev.s.CPUTotal) / float64(wall) * 100
}

func (r *HostRuntime) sample(ctx context.Context, name string) (sample, error) {
	st, err := r.h.containers.Stats(ctx, name)
	now := time.Now()
	if err != nil {
		return sample{}, err
	}
	s := Stats{Name: name, Time: now.UTC()}
	cg := st.CgroupStats
	if cg == nil {
		return sample{s: s, wall: now}, nil
	}
	s.CPUTotal = time.Duration(cg.CpuStats.CpuUsage.TotalUsage)
	mem := cg.MemoryStats
	s.MemoryUsage = mem.Usage.Usage
	// docker stats leaves out the page cache the kernel can drop at
	// once: total_inactive_file on cgroup v1, inactive_file on v2.
	inactive, ok := mem.Stats["total_inactive_file"]
	if !ok {
		inactive = mem.Stats["inactive_file"]
	}
	if inactive < s.MemoryUsage {
		s.MemoryUsage -= inactive
	}
	s.MemoryLimit = mem.Usage.Limit
	if host := hostMemory(); host > 0 && (s.MemoryLimit == 0 || s.MemoryLimit > host) {
		s.MemoryLimit = host
	}
	if s.MemoryLimit > 0 {
		s.MemoryPercent = float64(s.MemoryUsage) / float64(s.MemoryLimit) * 100
	}
	s.Pids = cg.PidsStats.Current
	if cg.PidsStats.Limit < 1<<62 {
		s.PidsLimit = cg.PidsStats.Limit
	}
	for _, e := range cg.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			s.BlockRead += e.Value
		case "write":
			s.BlockWrite += e.Value
		}
	}
	return sample{s: s, wall: now}, nil
}

var hostMemory = sync.OnceValue(func() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
})

// Logs implements Runtime. A follow ends when the container's init exits
// and its log is read to the end, as docker logs -f does.
func (r *HostRuntime) Logs(ctx context.Context, name string, o LogOptions) (Stream[LogEntry], error) {
	in, err := r.h.containers.Inspect(ctx, name)
	if err != nil {
		return nil, err
	}
	lo := logfile.Options{Tail: o.Tail, Since: o.Since, Follow: o.Follow}
	if o.Follow {
		if lo.Stop, err = r.h.containers.Exited(in.ID); err != nil {
			return nil, err
		}
	}
	lr, err := logfile.Open(in.LogPath, lo)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", in.Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	return &logStream{ctx: ctx, cancel: cancel, r: lr, timestamps: o.Timestamps}, nil
}

type logStream struct {
	mu         sync.Mutex // Close may come from another goroutine than Next
	ctx        context.Context
	cancel     context.CancelFunc
	r          *logfile.Reader
	timestamps bool
}

func (s *logStream) Next() (LogEntry, error) {
	s.mu.Lock()
	e, err := s.r.Next(s.ctx)
	s.mu.Unlock()
	if err != nil {
		if s.ctx.Err() != nil {
			return LogEntry{}, io.EOF // closed, or the caller went away
		}
		return LogEntry{}, err
	}
	le := LogEntry{Log: e.Log, Stream: e.Stream}
	if s.timestamps {
		le.Time = e.Time
	}
	return le, nil
}

func (s *logStream) Close() error {
	s.cancel() // ends a Next waiting for more
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.Close()
}

// item is a value or an error passed along a channel.
type item[T any] struct {
	v   T
	err error
}

func send[T any](ctx context.Context, ch chan<- item[T], it item[T]) bool {
	select {
	case ch <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

// chanStream is a Stream fed by a goroutine, which cancel stops.
type chanStream[T any] struct {
	ch     <-chan item[T]
	cancel context.CancelFunc
}

func (s *chanStream[T]) Next() (T, error) {
	it, ok := <-s.ch
	if !ok {
		var zero T
		return zero, io.EOF
	}
	return it.v, it.err
}

func (s *chanStream[T]) Close() error {
	s.cancel()
	for range s.ch {
	}
	return nil
}
