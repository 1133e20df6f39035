package supervise

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
	"github.com/seed-e88ffcd2/berth/resource"
)

// Health states, as Docker names them.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Health is the state of a container's health check, for the run in
// progress: a container that exited keeps the state of its last run until
// it starts again (as "starting").
type Health struct {
	Status        string  `json:"status"`
	FailingStreak int     `json:"failing_streak"`
	Log           []Probe `json:"log,omitempty"` // the last few checks, oldest first
}

// Probe is one run of a health check.
type Probe struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exit_code"` // -1 when it timed out
	Output   string    `json:"output"`    // stdout and stderr, at most 4 KiB
}

// Docker keeps the last five probes and 4 KiB of each one's output.
const (
	probesKept     = 5
	probeOutputMax = 4096
)

// State is what the supervisor knows of a container beyond the driver's
// view: for berth ps and inspect.
type State struct {
	Name string `json:"name"`
	// RestartCount is how many times the restart policy started the
	// container since a person (or an apply) last did.
	RestartCount int `json:"restart_count"`
	// RestartingAt is when a restart the policy decided is due (after
	// its back-off); zero when none is.
	RestartingAt time.Time `json:"restarting_at,omitzero"`
	// Health is nil for a container without a health check. It
	// describes the run that started at HealthRun: HealthOf gives the
	// health of the run in progress.
	Health    *Health   `json:"health,omitempty"`
	HealthRun time.Time `json:"health_run,omitzero"`
}

// HealthOf is the health of the container as in describes it: nil when
// it has no health check or does not run; "starting", without new
// probes, for a run the supervisor has not looked at yet (just started),
// whatever the run before it was.
func (st State) HealthOf(in container.Info) *Health {
	if in.Healthcheck == nil || in.Status != container.StatusRunning {
		return nil
	}
	if st.Health != nil && st.HealthRun.Equal(in.StartedAt) {
		h := *st.Health
		return &h
	}
	h := &Health{Status: HealthStarting}
	if st.Health != nil {
		h.Log = st.Health.Log
	}
	return h
}

// recordFormat is the version of the record files; a newer one is not
// read (the container starts afresh) rather than misread.
const recordFormat = 1

// record is what the supervisor keeps of one container between agent
// runs, in DIR/containers/NAME.json: one small file per container, so
// that recording an exit or a health check touches nothing else and a
// container's record goes with it.
type record struct {
	Format int    `json:"format"`
	Name   string `json:"name"`
	// Created tells one container of the name from the next: a container
	// made again starts with a new record.
	Created      time.Time     `json:"created"`
	RestartCount int           `json:"restart_count"`
	Backoff      time.Duration `json:"backoff_ns"`
	// The last exit handled, by the start and end of its run, so that an
	// exit is reported and acted on once, whichever agent sees it.
	HandledStarted  time.Time `json:"handled_started,omitzero"`
	HandledFinished time.Time `json:"handled_finished,omitzero"`
	// LastStart is the start of the last run the supervisor made; an
	// exit of another run (a person's berth start, a new container)
	// resets RestartCount, as docker start does.
	LastStart time.Time `json:"last_start,omitzero"`
	// Pending is a restart decided and not yet made.
	Pending *pending `json:"pending,omitempty"`
	// Health is the health of the run that started at HealthRun.
	Health    *Health   `json:"health,omitempty"`
	HealthRun time.Time `json:"health_run,omitzero"`
}

type pending struct {
	At time.Time `json:"at"`
	// Forced restarts a container a person stopped: an "always" one
	// when the agent starts.
	Forced bool `json:"forced,omitempty"`
}

func (r *record) handled(started, finished time.Time) bool {
	return r.HandledStarted.Equal(started) && r.HandledFinished.Equal(finished)
}

func (r *record) state() State {
	st := State{Name: r.Name, RestartCount: r.RestartCount}
	if r.Pending != nil {
		st.RestartingAt = r.Pending.At
	}
	if r.Health != nil {
		h := *r.Health
		h.Log = append([]Probe(nil), h.Log...)
		st.Health, st.HealthRun = &h, r.HealthRun
	}
	return st
}

func recordDir(dir string) string { return filepath.Join(dir, "containers") }

func recordPath(dir, name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return "", resource.Errorf(resource.ErrNotFound, "no container %q on this host", name)
	}
	return filepath.Join(recordDir(dir), name+".json"), nil
}

func readRecord(dir, name string) (*record, error) {
	path, err := recordPath(dir, name)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("supervisor record %s: %w", path, err)
	}
	if r.Format > recordFormat {
		return nil, fmt.Errorf("supervisor record %s has format %d, newer than this berth's %d", path, r.Format, recordFormat)
	}
	return &r, nil
}

func writeRecord(dir string, r *record) error {
	path, err := recordPath(dir, r.Name)
	if err != nil {
		return err
	}
	r.Format = recordFormat
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600)
}

func removeRecord(dir, name string) error {
	path, err := recordPath(dir, name)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ReadState reads what the supervisor recorded of the container name
// under dir (the Config.Dir of the agent's supervisor), for a berth
// command that runs without the agent. It is what the last agent saw: a
// container's health is current only while an agent runs. A container
// never supervised is an error wrapping fs.ErrNotExist.
func ReadState(dir, name string) (State, error) {
	r, err := readRecord(dir, name)
	if err != nil {
		return State{}, err
	}
	return r.state(), nil
}
