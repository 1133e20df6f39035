package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/seed-e88ffcd2/berth/resource"
	"golang.org/x/sys/unix"
)

// SessionRunner runs one session and returns its exit code. ctx is
// cancelled only when the agent gives up waiting for the session at
// shutdown; interruptions arrive as signals on s.Signals first.
type SessionRunner func(ctx context.Context, s *Session) int

// sessionSignals are the signals a client may forward.
var sessionSignals = map[string]syscall.Signal{
	"SIGINT":   syscall.SIGINT,
	"SIGTERM":  syscall.SIGTERM,
	"SIGHUP":   syscall.SIGHUP,
	"SIGQUIT":  syscall.SIGQUIT,
	"SIGWINCH": syscall.SIGWINCH,
}

type sessionTable struct {
	runner SessionRunner
	log    *slog.Logger
	ctx    context.Context
	abort  context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	live    map[string]*liveSession
	closing bool
}

func newSessionTable(runner SessionRunner, log *slog.Logger) *sessionTable {
	ctx, abort := context.WithCancel(context.Background())
	return &sessionTable{runner: runner, log: log, ctx: ctx, abort: abort, live: map[string]*liveSession{}}
}

// liveSession is the signal side of a running session.
type liveSession struct {
	mu     sync.Mutex
	ch     chan os.Signal
	closed bool
}

// deliver queues sig for the session; a full queue drops it (the session
// has not taken the ones before).
func (l *liveSession) deliver(sig os.Signal) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	select {
	case l.ch <- sig:
		return true
	default:
		return false
	}
}

func (l *liveSession) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	close(l.ch)
}

// validID: what a client's random id is made of.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// serveStart is POST /v1/sessions: it runs the session on the passed
// descriptors and answers its exit code when it ends.
func (t *sessionTable) serveStart(w http.ResponseWriter, r *http.Request) {
	files := Files(r)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var req SessionRequest
	if err := DecodeRequest(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	if err := checkSession(&req, len(files)); err != nil {
		WriteError(w, err)
		return
	}
	if t.runner == nil {
		WriteError(w, resource.Errorf(resource.ErrUnavailable, "this agent runs no sessions"))
		return
	}
	live := &liveSession{ch: make(chan os.Signal, 8)}
	if err := t.add(req.ID, live); err != nil {
		WriteError(w, err)
		return
	}
	defer t.remove(req.ID, live)

	log := t.log.With("session", req.ID)
	command := ""
	if len(req.Args) > 0 {
		command = req.Args[0] // the rest may hold -var secrets
	}
	log.Info("session started", "command", command, "cwd", req.Cwd)
	start := time.Now()

	// A client gone before its session ended gets what Ctrl-C would have
	// done: an apply finishes what is in flight and starts nothing new.
	ended := make(chan struct{})
	go func() {
		select {
		case <-r.Context().Done():
			log.Info("session client disconnected: interrupting the session")
			live.deliver(syscall.SIGINT)
		case <-ended:
		}
	}()
	code := func() int {
		defer close(ended)
		return t.runner(t.ctx, &Session{
			ID:      req.ID,
			Args:    req.Args,
			Cwd:     req.Cwd,
			Env:     req.Env,
			Stdin:   files[0],
			Stdout:  files[1],
			Stderr:  files[2],
			Signals: live.ch,
		})
	}()
	// Close the client's descriptors before answering: whoever reads the
	// client's output sees its end when the client exits.
	for _, f := range files {
		f.Close()
	}
	files = nil
	log.Info("session ended", "command", command, "exit_code", code, "duration", time.Since(start))
	writeJSON(w, http.StatusOK, &SessionResult{ExitCode: code})
}

func checkSession(req *SessionRequest, nfiles int) error {
	switch {
	case nfiles != 3:
		return Invalid("a session needs the client's stdin, stdout and stderr passed with SCM_RIGHTS on the request's connection, and %d file descriptors came: use api.Client.Session (the berth CLI does)", nfiles)
	case !validID(req.ID):
		return Invalid("session id %q: use 1 to 64 letters, digits, '-' or '_'", req.ID)
	case !filepath.IsAbs(req.Cwd):
		return Invalid("session cwd %q: give the client's working directory as an absolute path", req.Cwd)
	}
	return nil
}

func (t *sessionTable) add(id string, l *liveSession) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return resource.Errorf(resource.ErrUnavailable, "the agent is shutting down: run the command again once it is back (or without it)")
	}
	if t.live[id] != nil {
		return resource.Errorf(resource.ErrAlreadyExists, "session %q already runs: choose another id", id)
	}
	t.live[id] = l
	t.wg.Add(1)
	return nil
}

func (t *sessionTable) remove(id string, l *liveSession) {
	t.mu.Lock()
	delete(t.live, id)
	t.mu.Unlock()
	l.close()
	t.wg.Done()
}

// serveSignal is POST /v1/sessions/{id}/signal.
func (t *sessionTable) serveSignal(r *http.Request, in *SignalRequest) (*None, error) {
	sig, ok := sessionSignals[in.Signal]
	if !ok {
		return nil, Invalid("signal %q: send one of SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH", in.Signal)
	}
	id := r.PathValue("id")
	t.mu.Lock()
	l := t.live[id]
	t.mu.Unlock()
	if l == nil {
		return nil, resource.Errorf(resource.ErrNotFound, "no session %q runs (it may have ended)", id)
	}
	if sig != syscall.SIGWINCH {
		t.log.Info("session signalled", "session", id, "signal", in.Signal)
	}
	l.deliver(sig)
	return nil, nil
}

// interruptAll refuses new sessions and sends SIGINT to each running one.
func (t *sessionTable) interruptAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closing = true
	for id, l := range t.live {
		t.log.Info("interrupting session for shutdown", "session", id)
		l.deliver(syscall.SIGINT)
	}
}

// abortAll cancels the running sessions' context and says how many run.
func (t *sessionTable) abortAll() int {
	t.abort()
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}

// InterruptibleReader reads f, a descriptor a client passed (blocking, and
// not to be made non-blocking: its file description is the client's too),
// but gives up with ctx's error once ctx ends, instead of waiting for the
// next line the user types: a session that was interrupted at a prompt
// must not go on to read from a terminal its client has left.
func InterruptibleReader(ctx context.Context, f *os.File) io.Reader {
	return &ctxReader{ctx: ctx, f: f}
}

type ctxReader struct {
	ctx context.Context
	f   *os.File
}

// File is the descriptor read: an interactive command (berth exec, run)
// gives it to a container's process as it is, or puts the terminal it is
// in raw mode.
func (r *ctxReader) File() *os.File { return r.f }

func (r *ctxReader) Read(p []byte) (int, error) {
	fd := int32(r.f.Fd())
	for {
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		fds := []unix.PollFd{{Fd: fd, Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 200)
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("waiting for input: %w", err)
		}
		return r.f.Read(p)
	}
}
