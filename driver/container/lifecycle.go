package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/seed-e88ffcd2/berth/internal/monitor"
	"github.com/seed-e88ffcd2/berth/resource"
	"golang.org/x/sys/unix"
)

// What the imperative verbs (berth ps, stop, start, kill, exec …) and the
// agent's supervisor do to containers that exist, by name: the declarative
// Create/Update/Delete stay the only way to make or change one.

// Container states, as berth ps shows them.
const (
	StatusCreated = "created" // made, init not started (a create in progress or one that crashed)
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusExited  = "exited"
)

// Info is what berth knows of one container.
type Info struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Owner   string            `json:"owner,omitempty"` // PROJECT/ADDRESS; (run)/container.NAME["…"] for berth run's (resource.RunProject)
	Image   string            `json:"image,omitempty"`
	Command []string          `json:"command,omitempty"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`

	Status     string    `json:"status"`
	Pid        int       `json:"pid,omitempty"` // the init, while it runs
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	ExitCode   int       `json:"exit_code"`
	ExitSignal string    `json:"exit_signal,omitempty"`
	OOMKilled  bool      `json:"oom_killed,omitempty"`
	// Monitored says a monitor watches the init (false for a container
	// whose monitor was killed: its exit status will be lost).
	Monitored bool `json:"monitored"`

	Restart       string `json:"restart"`
	StoppedByUser bool   `json:"stopped_by_user,omitempty"`
	StopSignal    string `json:"stop_signal,omitempty"`
	StopTimeout   string `json:"stop_timeout,omitempty"`
	// Healthcheck is the check the agent's supervisor runs, nil for none.
	Healthcheck *resource.HealthcheckSpec `json:"healthcheck,omitempty"`

	Networks map[string]string   `json:"networks,omitempty"` // network name → address
	Ports    []resource.PortSpec `json:"ports,omitempty"`
	LogPath  string              `json:"log_path"`
}

// List describes every container on the host, by name.
func (d *Driver) List(ctx context.Context) ([]Info, error) {
	all, err := d.allMeta()
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(all))
	for _, m := range all {
		out = append(out, d.info(m))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Inspect describes the container named name (or with that id).
func (d *Driver) Inspect(ctx context.Context, name string) (Info, error) {
	m, err := d.byName(name)
	if err != nil {
		return Info{}, err
	}
	return d.info(m), nil
}

// validID reports whether a name can be a container's id: nothing that
// would make a path of it.
func validID(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/\x00") && name != "." && name != ".."
}

func (d *Driver) byName(name string) (*meta, error) {
	if !validID(name) {
		return nil, resource.Errorf(resource.ErrNotFound, "no container %q on this host (berth ps -a lists them)", name)
	}
	m, err := readMeta(d.dir(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, resource.Errorf(resource.ErrNotFound, "no container %q on this host (berth ps -a lists them)", name)
	} else if err != nil {
		return nil, unreadableOwner(d.dir(name), name, err)
	}
	return m, nil
}

func (d *Driver) info(m *meta) Info {
	in := Info{
		ID: m.ID, Name: m.Name, Owner: m.Owner, Image: m.Image, Command: m.Command, Created: m.Created,
		Labels: m.Labels, Restart: m.Restart, StoppedByUser: m.StoppedByUser,
		StopSignal: m.StopSignal, StopTimeout: m.StopTimeout, Healthcheck: m.Healthcheck, LogPath: d.LogPath(m.ID),
		Status: StatusCreated,
	}
	if in.Restart == "" {
		in.Restart = "no"
	}
	for _, a := range m.Attachments {
		if in.Networks == nil {
			in.Networks = map[string]string{}
		}
		in.Networks[a.Network] = a.IP
		in.Ports = append(in.Ports, a.Ports...)
	}
	dir := d.dir(m.ID)
	rec, recErr := monitor.ReadRecord(dir)
	if recErr == nil {
		in.StartedAt = rec.Started
		in.Monitored = rec.Alive()
	}
	c, err := libcontainer.Load(d.stateRoot(), m.ID)
	if err != nil {
		return in
	}
	st, err := c.Status()
	if err != nil {
		return in
	}
	switch st {
	case libcontainer.Running, libcontainer.Created:
		in.Status = StatusRunning
		if s, err := c.State(); err == nil {
			in.Pid = s.InitProcessPid
		}
		return in
	case libcontainer.Paused:
		in.Status = StatusPaused
		return in
	}
	in.Status = StatusExited
	if e, ok := lastExit(dir); ok {
		in.ExitCode, in.ExitSignal, in.FinishedAt = e.Code, e.Signal, e.Finished
	}
	if s, err := c.State(); err == nil {
		in.OOMKilled = oomKilled(s.CgroupPaths)
	}
	return in
}

// Exited returns a channel closed once the monitor of the container's
// current init has recorded its exit (at once when none runs).
func (d *Driver) Exited(id string) (<-chan struct{}, error) {
	rec, err := monitor.ReadRecord(d.dir(id))
	if errors.Is(err, fs.ErrNotExist) {
		return closedChan, nil
	} else if err != nil {
		return nil, err
	}
	return d.pids.watch(rec.Pid, rec.StartTicks)
}

// Start starts again the init of a container whose init exited, in the
// same root filesystem, network namespace and mounts, under a new monitor.
func (d *Driver) Start(ctx context.Context, name string) error {
	return d.startAgain(ctx, name, false)
}

// ErrStoppedByUser is what StartUnlessStoppedByUser returns for a
// container a person stopped.
var ErrStoppedByUser = errors.New("stopped by a person")

// StartUnlessStoppedByUser is Start for a restart policy: it fails with
// ErrStoppedByUser, and starts nothing, when a person stopped the
// container. The mark is read under the container's lock, which Stop and
// Kill take to set it: a person's stop is never undone by a restart
// decided before it.
func (d *Driver) StartUnlessStoppedByUser(ctx context.Context, name string) error {
	return d.startAgain(ctx, name, true)
}

func (d *Driver) startAgain(ctx context.Context, name string, unlessStoppedByUser bool) error {
	unlock, err := d.lockName(name)
	if err != nil {
		return err
	}
	defer unlock()
	m, err := d.byName(name)
	if err != nil {
		return err
	}
	if unlessStoppedByUser && m.StoppedByUser {
		return fmt.Errorf("container %s: %w", m.Name, ErrStoppedByUser)
	}
	return d.startLocked(ctx, m)
}

// startLocked starts the exited init of the container m describes again;
// the caller holds its name's lock.
func (d *Driver) startLocked(ctx context.Context, m *meta) error {
	dir := d.dir(m.ID)
	if _, err := readStartSpec(dir); err != nil {
		return fmt.Errorf("container %s cannot be started again (made by an older berth; the next apply replaces it): %w", m.Name, err)
	}
	if c, err := libcontainer.Load(d.stateRoot(), m.ID); err == nil {
		if running(c) {
			return resource.Errorf(resource.ErrConflict, "container %s is already running", m.Name)
		}
		// The old monitor must be gone before the new one writes.
		monitorGone(dir, 5*time.Second)
		if err := c.Destroy(); err != nil {
			return fmt.Errorf("remove the exited init of %s: %w", m.Name, err)
		}
	} else if !errors.Is(err, libcontainer.ErrNotExist) {
		return err
	}
	_ = os.Remove(dir + "/" + monitor.ExitFile)
	if err := d.spawn(ctx, dir, nil); err != nil {
		return fmt.Errorf("start container %s: %w", m.Name, err)
	}
	if m.StoppedByUser || !m.Started {
		m.StoppedByUser, m.Started = false, true
		return writeMeta(dir, m)
	}
	return nil
}

// Stop stops the container's init as Delete does (its stop signal, then
// SIGKILL after timeout, or its own stop timeout when timeout is negative)
// and waits for the monitor to record the exit. byUser marks it stopped by
// a person, whom a restart policy does not overrule.
func (d *Driver) Stop(ctx context.Context, name string, timeout time.Duration, byUser bool) error {
	m, err := d.byName(name)
	if err != nil {
		return err
	}
	if byUser {
		if err := d.setStoppedByUser(m.ID); err != nil {
			return err
		}
	}
	sig, t := stopSettings(m.StopSignal, m.StopTimeout)
	if timeout >= 0 {
		t = timeout
	}
	c, err := libcontainer.Load(d.stateRoot(), m.ID)
	if err != nil {
		return nil // nothing runs
	}
	if err := d.stop(ctx, c, sig, t); err != nil {
		return fmt.Errorf("stop container %s: %w", m.Name, err)
	}
	ch, err := d.Exited(m.ID)
	if err != nil {
		return err
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
	}
	return nil
}

// Kill sends sig to the container's init; byUser as for Stop.
func (d *Driver) Kill(ctx context.Context, name string, sig syscall.Signal, byUser bool) error {
	m, err := d.byName(name)
	if err != nil {
		return err
	}
	c, err := libcontainer.Load(d.stateRoot(), m.ID)
	if err != nil || !running(c) {
		return resource.Errorf(resource.ErrConflict, "container %s is not running", m.Name)
	}
	if byUser {
		if err := d.setStoppedByUser(m.ID); err != nil {
			return err
		}
	}
	if err := c.Signal(sig); err != nil {
		return fmt.Errorf("signal container %s: %w", m.Name, err)
	}
	return nil
}

func (d *Driver) setStoppedByUser(id string) error {
	unlock, err := d.lockName(id)
	if err != nil {
		return err
	}
	defer unlock()
	m, err := readMeta(d.dir(id))
	if err != nil {
		return err
	}
	m.StoppedByUser = true
	return writeMeta(d.dir(id), m)
}

// ExecOptions describe a process to run in a running container.
type ExecOptions struct {
	Args []string
	Env  []string // added to the container's
	User string   // user[:group] in the container; default the container's
	Cwd  string   // default the container's
	// The process's streams; nil is /dev/null. With TTY they are unused
	// and Console receives the master end of a new terminal instead, to
	// copy to and from until the process ends.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	Console        func(master *os.File)
}

// Exec runs a process in the running container and returns its exit
// code once it ends. Cancelling ctx kills it.
func (d *Driver) Exec(ctx context.Context, name string, o ExecOptions) (int, error) {
	if len(o.Args) == 0 {
		return -1, resource.Errorf(resource.ErrInvalid, "exec needs a command to run")
	}
	m, err := d.byName(name)
	if err != nil {
		return -1, err
	}
	c, err := libcontainer.Load(d.stateRoot(), m.ID)
	if err != nil || !running(c) {
		return -1, resource.Errorf(resource.ErrConflict, "container %s is not running: berth start %s first", m.Name, m.Name)
	}
	spec, err := readStartSpec(d.dir(m.ID))
	if err != nil {
		return -1, fmt.Errorf("container %s: %w", m.Name, err)
	}
	p := spec.Process.process()
	p.Init = false
	p.Args = o.Args
	p.Env = append(append([]string(nil), p.Env...), o.Env...)
	if o.Cwd != "" {
		p.Cwd = o.Cwd
	}
	if o.User != "" {
		u, err := lookupUser(d.dir(m.ID)+"/rootfs", o.User)
		if err != nil {
			return -1, resource.Errorf(resource.ErrInvalid, "%v", err)
		}
		p.UID, p.GID, p.AdditionalGroups = u.Uid, u.Gid, u.Sgids
	}
	p.Stdin, p.Stdout, p.Stderr = o.Stdin, o.Stdout, o.Stderr
	var parent, child *os.File
	if o.TTY {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		parent, child = os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child")
		defer parent.Close()
		defer child.Close()
		p.ConsoleSocket = child
		p.Stdin, p.Stdout, p.Stderr = nil, nil, nil
	}
	if err := c.Run(p); err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", m.Name, err)
	}
	if o.TTY {
		master, err := recvFile(parent)
		if err != nil {
			_ = p.Signal(unix.SIGKILL)
			_, _ = p.Wait()
			return -1, fmt.Errorf("receive the terminal: %w", err)
		}
		if o.Console != nil {
			o.Console(master)
		}
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = p.Signal(unix.SIGKILL)
		case <-done:
		}
	}()
	ps, err := p.Wait()
	if ps == nil {
		return -1, err
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
	return ps.ExitCode(), nil
}

// Processes lists the pids of every process in the container (host pid
// namespace), for berth top.
func (d *Driver) Processes(ctx context.Context, name string) ([]int, error) {
	m, err := d.byName(name)
	if err != nil {
		return nil, err
	}
	c, err := libcontainer.Load(d.stateRoot(), m.ID)
	if err != nil || !running(c) {
		return nil, resource.Errorf(resource.ErrConflict, "container %s is not running", m.Name)
	}
	return c.Processes()
}

// Stats reads the container's cgroup counters, for berth stats.
func (d *Driver) Stats(ctx context.Context, name string) (*libcontainer.Stats, error) {
	m, err := d.byName(name)
	if err != nil {
		return nil, err
	}
	c, err := libcontainer.Load(d.stateRoot(), m.ID)
	if err != nil || !running(c) {
		return nil, resource.Errorf(resource.ErrConflict, "container %s is not running", m.Name)
	}
	return c.Stats()
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
