package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/seed-e88ffcd2/berth/agent/api"
	"github.com/seed-e88ffcd2/berth/agent/supervise"
	"github.com/seed-e88ffcd2/berth/resource"
	"golang.org/x/sys/unix"
)

// DaemonOptions are what the daemon runs besides its API.
type DaemonOptions struct {
	// Logger receives the daemon's structured log; nil discards it.
	Logger *slog.Logger
	// Version is the berth version the API reports.
	Version string
	// Sessions makes, once the host is open, the runner of CLI commands
	// on a client's terminal (cmd/berth supplies it); nil refuses
	// sessions.
	Sessions func(h *Host) api.SessionRunner
	// Register adds endpoints to the API once the host is open, before
	// the socket answers: func(srv, h) { srv.Handle("GET /v1/...", ...) }.
	Register []func(srv *api.Server, h *Host)
	// Start runs subsystems for the daemon's life (a supervisor, say),
	// each in its own goroutine once the API answers. ctx ends at
	// shutdown, after the sessions, and Serve waits for each to return
	// before closing the store. An error returned before shutdown stops
	// the daemon with that error.
	Start []func(ctx context.Context, h *Host) error
	// ShutdownTimeout bounds how long running sessions get to finish
	// after the interrupt the daemon sends them at shutdown (default
	// 30 s); then their contexts are cancelled.
	ShutdownTimeout time.Duration
}

// lockName is the agent's lock file in the state directory: the agent
// holds it exclusively, a CLI running a command in-process holds it
// shared, so only one process ever holds the store.
const lockName = "agent.lock"

// lockInfo is what the agent writes into its lock file.
type lockInfo struct {
	PID     int       `json:"pid"`
	Socket  string    `json:"socket"`
	Started time.Time `json:"started"`
}

// Serve runs the agent until ctx ends: it takes the host's agent lock
// (refusing to start when another agent holds it), opens the host once,
// answers the API on cfg.Socket (mode 0600 from its creation) and runs
// opts.Start. When ctx ends it stops accepting, interrupts the running
// sessions and waits for them (opts.ShutdownTimeout), stops the
// subsystems, removes the socket and closes the store. Containers are
// processes of their own and keep running.
func Serve(ctx context.Context, cfg Config, opts DaemonOptions) (err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	lock, err := lockAgent(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer lock.Close() // last: the store is closed and the socket gone

	host, err := Open(cfg)
	if err != nil {
		return err
	}
	defer host.Close()

	l, ino, err := listen(cfg.Socket, log)
	if err != nil {
		return err
	}
	defer removeSocket(cfg.Socket, ino, log)

	var runner api.SessionRunner
	if opts.Sessions != nil {
		runner = opts.Sessions(host)
	}
	// The supervisor: restart policies, health checks, the events bus.
	// The verbs tell it what a person did, and read health and events
	// from it.
	sup, err := supervise.New(host.containers, supervise.Config{
		Dir: host.superviseDir, Logger: log.With("component", "supervise"),
		Recorded: host.recordedContainers, // drift: containers removed outside berth
	})
	if err != nil {
		return err
	}
	defer sup.Close()
	host.SetSupervisor(sup)
	opts.Start = append([]func(context.Context, *Host) error{func(ctx context.Context, _ *Host) error { return sup.Run(ctx) }}, opts.Start...)

	srv := api.NewServer(api.Options{Logger: log, Version: opts.Version, Runner: runner})
	RegisterRuntime(srv, host.Runtime()) // the verbs: berth ps, stop, logs, …
	for _, r := range opts.Register {
		r(srv, host)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	subCtx, stopSubs := context.WithCancel(context.Background())
	defer stopSubs()
	var subs sync.WaitGroup
	failed := make(chan error, len(opts.Start))
	for _, start := range opts.Start {
		subs.Add(1)
		go func() {
			defer subs.Done()
			if err := start(subCtx, host); err != nil && subCtx.Err() == nil {
				failed <- err
			}
		}()
	}
	log.Info("agent started", "pid", os.Getpid(), "version", opts.Version, "socket", cfg.Socket, "state_dir", cfg.StateDir)

	select {
	case <-ctx.Done():
		log.Info("shutting down: interrupting running sessions", "timeout", opts.ShutdownTimeout)
	case err = <-served:
		err = fmt.Errorf("serving the API: %w", err)
		log.Error("the API stopped", "error", err)
	case err = <-failed:
		log.Error("a subsystem failed: shutting down", "error", err)
	}
	sdCtx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sdCtx); serr != nil {
		log.Warn("shutdown", "error", serr)
	}
	stopSubs()
	subs.Wait()
	log.Info("agent stopped; containers keep running")
	return err
}

// lockAgent takes the agent lock exclusively and writes the holder's
// info into it. Another agent holding it is an error naming its pid; berth
// commands running in-process (holding it shared) are waited for.
func lockAgent(ctx context.Context, cfg Config, log *slog.Logger) (*os.File, error) {
	path := filepath.Join(cfg.StateDir, lockName)
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	waiting := false
	for {
		err := flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		// Shared holders only (commands run without the agent) let a
		// shared lock be taken; an agent does not.
		if err := flock(fd, unix.LOCK_SH|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			info := readLockInfo(path)
			if info.PID == 0 {
				return nil, resource.Errorf(resource.ErrConflict, "another berth agent already runs on this host (it holds %s)", path)
			}
			return nil, resource.Errorf(resource.ErrConflict, "an agent (pid %d) already runs on this host, on %s (it holds %s)", info.PID, info.Socket, path)
		}
		_ = flock(fd, unix.LOCK_UN)
		if !waiting {
			log.Info("waiting for berth commands running without the agent to finish", "lock", path)
			waiting = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := writeLockInfo(f, lockInfo{PID: os.Getpid(), Socket: cfg.Socket, Started: time.Now().UTC()}); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return f, nil
}

// writeLockInfo replaces the lock file's content with info.
func writeLockInfo(f *os.File, info lockInfo) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt(append(b, '\n'), 0)
	return err
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func readLockInfo(path string) lockInfo {
	var info lockInfo
	b, err := os.ReadFile(path)
	if err == nil {
		_ = json.Unmarshal(b, &info)
	}
	return info
}

// LocalHost is a host opened by a berth command running without the
// agent: it holds the agent lock shared until Close.
type LocalHost struct {
	*Host
	lock *os.File
}

// Close closes the store and lets an agent start.
func (l *LocalHost) Close() error {
	err := l.Host.Close()
	l.lock.Close()
	return err
}

// OpenLocal opens the host for a command that runs in-process, which
// is allowed only while no agent runs: the agent alone holds the store
// then, and a command that did not reach it (cfg.Socket says where it
// looked) is refused with an error naming the agent's pid and socket.
func OpenLocal(cfg Config) (*LocalHost, error) {
	path := filepath.Join(cfg.StateDir, lockName)
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		info := readLockInfo(path)
		who := "a berth agent"
		if info.PID != 0 {
			who = fmt.Sprintf("the berth agent (pid %d, socket %s)", info.PID, info.Socket)
		}
		return nil, resource.Errorf(resource.ErrConflict,
			"%s holds this host's state in %s, and this command did not reach it at %s: point BERTH_SOCKET at the agent's socket, or stop the agent",
			who, cfg.StateDir, cfg.Socket)
	}
	h, err := Open(cfg)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &LocalHost{Host: h, lock: f}, nil
}

// listen makes the API socket with mode 0600 from the start: it is bound
// in a fresh directory only root can enter, made 0600, then renamed into
// place (replacing a socket a killed agent left). It returns the
// listener and the socket's inode, to remove only its own at the end.
func listen(path string, log *slog.Logger) (*net.UnixListener, uint64, error) {
	if !filepath.IsAbs(path) {
		return nil, 0, fmt.Errorf("socket %q: give an absolute path", path)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, 0, fmt.Errorf("socket %s: the path exists and is not a socket; remove it or choose another socket", path)
		}
		if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
			conn.Close()
			return nil, 0, resource.Errorf(resource.ErrConflict, "socket %s is served by another process: stop it, or give this agent another socket", path)
		}
		log.Info("replacing a socket left by an agent that did not stop cleanly", "socket", path)
	}
	tmp, err := os.MkdirTemp(dir, ".b")
	if err != nil {
		return nil, 0, fmt.Errorf("socket directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	bound := filepath.Join(tmp, "s")
	if len(bound) >= len(unix.RawSockaddrUnix{}.Path) || len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, 0, fmt.Errorf("socket %s: the path is too long for a unix socket: choose a shorter one", path)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: bound, Net: "unix"})
	if err != nil {
		return nil, 0, fmt.Errorf("socket %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	var st unix.Stat_t
	err = os.Chmod(bound, 0o600)
	if err == nil {
		err = unix.Stat(bound, &st)
	}
	if err == nil {
		err = os.Rename(bound, path)
	}
	if err != nil {
		l.Close()
		return nil, 0, fmt.Errorf("socket %s: %w", path, err)
	}
	return l, st.Ino, nil
}

// removeSocket removes the socket if it is still the one this agent made.
func removeSocket(path string, ino uint64, log *slog.Logger) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Ino != ino {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, syscall.ENOENT) {
		log.Warn("removing the socket", "socket", path, "error", err)
	}
}
