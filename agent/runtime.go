package agent

import (
	"context"
	"time"

	"github.com/seed-e88ffcd2/berth/agent/supervise"
	"github.com/seed-e88ffcd2/berth/driver/container"
)

// Runtime is what the imperative verbs (berth ps, inspect, stop, start,
// restart, kill, rm, top, stats, logs, events) do to containers that
// exist, by name. Two implementations: the host's own (HostRuntime, over
// the container driver, for a CLI running without an agent and for the
// agent itself) and the agent's API (ClientRuntime). The CLI holds one
// and does not know which.
//
// The declarative path stays the only way to make or change a container:
// what a verb does to a container a project declares, the project's next
// apply undoes.
type Runtime interface {
	// List describes the running containers, or all of them, by name.
	List(ctx context.Context, all bool) ([]Container, error)
	// Inspect describes one container.
	Inspect(ctx context.Context, name string) (Container, error)
	// Start starts a container whose init exited; a running one is a
	// conflict.
	Start(ctx context.Context, name string) (Container, error)
	// Stop sends the container's stop signal, then SIGKILL after timeout
	// (its own stop_timeout when timeout is negative), and marks it
	// stopped by the user: its restart policy does not start it again.
	Stop(ctx context.Context, name string, timeout time.Duration) (Container, error)
	// Restart stops (as Stop) and starts the container.
	Restart(ctx context.Context, name string, timeout time.Duration) (Container, error)
	// Kill sends a signal (a name such as "KILL" or "SIGHUP", or a
	// number) to the container's init.
	Kill(ctx context.Context, name, signal string) (Container, error)
	// Remove deletes a container; a running one only with force. It
	// returns what was removed.
	Remove(ctx context.Context, name string, force bool) (Container, error)
	// Top lists the container's processes.
	Top(ctx context.Context, name string) ([]Process, error)
	// Stats samples the container's cgroup counters: one sample, or one
	// a second while stream and the container runs.
	Stats(ctx context.Context, name string, stream bool) (Stream[Stats], error)
	// Logs reads the container's output.
	Logs(ctx context.Context, name string, o LogOptions) (Stream[LogEntry], error)
	// Events reports what happens to containers.
	Events(ctx context.Context, o EventOptions) (Stream[Event], error)
}

// Stream is a sequence of values that arrive over time. Next returns
// io.EOF at its end; Close stops it early.
type Stream[T any] interface {
	Next() (T, error)
	Close() error
}

// StatusRestarting is a Container's Status, as docker inspect's, while
// its init has exited and the supervisor has a restart pending under its
// restart policy (Restarting): the driver's Status says exited.
const StatusRestarting = "restarting"

// Container is one container as the verbs show it: what the container
// driver knows, and what the supervisor knows of its health and restarts.
type Container struct {
	container.Info
	// Health is the health check's state (starting, healthy, unhealthy);
	// empty for a container without one.
	Health string `json:"health,omitempty"`
	// Restarting says the supervisor waits to start the container again
	// under its restart policy.
	Restarting bool `json:"restarting,omitempty"`
	// RestartCount is how many times its policy restarted it.
	RestartCount int `json:"restart_count,omitempty"`
	// HealthCheck is the health check's state and its last probes.
	HealthCheck *supervise.Health `json:"health_check,omitempty"`
}

// Process is one process of a container, as berth top shows it.
type Process struct {
	PID  int    `json:"pid"` // in the host's pid namespace
	PPID int    `json:"ppid"`
	UID  int    `json:"uid"`
	User string `json:"user"` // the host's name for UID, or the number
	// CPU is the processor time the process used (user and system).
	CPU time.Duration `json:"cpu_ns"`
	// Command is its command line, or its name in brackets when it has
	// none (a kernel-made or zombie process).
	Command string `json:"command"`
}

// Stats is one sample of a container's cgroup counters.
type Stats struct {
	Name string    `json:"name"`
	Time time.Time `json:"time"`
	// CPUPercent is the processor time used since the previous sample
	// (or over a short first interval) per wall-clock time, in percent of
	// one CPU: 200 is two CPUs busy.
	CPUPercent float64 `json:"cpu_percent"`
	// CPUTotal is the processor time used since the container started.
	CPUTotal time.Duration `json:"cpu_total_ns"`
	// MemoryUsage is the memory charged to the container, less the
	// inactive page cache (as docker stats shows it), in bytes.
	MemoryUsage uint64 `json:"memory_usage"`
	// MemoryLimit is its memory limit, or the host's memory if it has none.
	MemoryLimit   uint64  `json:"memory_limit"`
	MemoryPercent float64 `json:"memory_percent"`
	Pids          uint64  `json:"pids"`
	PidsLimit     uint64  `json:"pids_limit,omitempty"` // 0: none
	// BlockRead and BlockWrite are the bytes read from and written to
	// block devices.
	BlockRead  uint64 `json:"block_read"`
	BlockWrite uint64 `json:"block_write"`
}

// LogOptions choose what Logs reads.
type LogOptions struct {
	// Follow keeps reading what the container writes until it exits (and
	// its log is drained) or the context ends.
	Follow bool
	// Tail is the number of entries from the end to start with; negative
	// is all.
	Tail int
	// Since skips entries older than it.
	Since time.Time
	// Timestamps keeps each entry's time; without it Time is zero.
	Timestamps bool
}

// LogEntry is one line of a container's output.
type LogEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"` // stdout or stderr
	Time   time.Time `json:"time,omitzero"`
}

// EventOptions choose the events Events reports.
type EventOptions struct {
	// Since starts with the events from this time that are known; zero
	// reports only what happens from now.
	Since time.Time
	// Until ends the stream at this time; zero follows until the context
	// ends.
	Until time.Time
	// Names keeps only the events of these containers; empty keeps all.
	Names []string
	// Actions keeps only these actions; empty keeps all.
	Actions []string
}

// Event is one thing that happened to a container: the supervisor's
// events, as its bus records them and the verbs report them.
type Event = supervise.Event

// Event types (Event.Type), as docker events names them.
const (
	ActionCreate  = supervise.EventCreate
	ActionStart   = supervise.EventStart
	ActionDie     = supervise.EventDie // the init exited, for whatever reason
	ActionStop    = supervise.EventStop
	ActionKill    = supervise.EventKill
	ActionRestart = supervise.EventRestart
	ActionOOM     = supervise.EventOOM
	ActionDestroy = supervise.EventDestroy
	ActionHealth  = supervise.EventHealthStatus // Health says which
	ActionDrift   = supervise.EventDrift
)

// EventActions are the event types berth events knows (EventOptions.Actions).
var EventActions = []string{string(ActionCreate), string(ActionStart), string(ActionDie), string(ActionStop), string(ActionKill),
	string(ActionRestart), string(ActionOOM), string(ActionDestroy), string(ActionHealth), string(ActionDrift)}

func (o EventOptions) match(e Event) bool {
	if !o.Since.IsZero() && e.Time.Before(o.Since) {
		return false
	}
	if !o.Until.IsZero() && e.Time.After(o.Until) {
		return false
	}
	if len(o.Names) > 0 && !contains(o.Names, e.Container) {
		return false
	}
	if len(o.Actions) > 0 && !contains(o.Actions, string(e.Type)) {
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
