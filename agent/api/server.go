package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Options configure a Server.
type Options struct {
	// Logger receives the server's structured log; nil discards it.
	Logger *slog.Logger
	// Version is the berth version GET /v1/version reports.
	Version string
	// Runner runs sessions; nil refuses them.
	Runner SessionRunner
}

// Server is the agent's API: a ServeMux whose handlers answer JSON, recover
// from panics, and may take the file descriptors their connection passed.
type Server struct {
	mux      *http.ServeMux
	log      *slog.Logger
	version  Version
	sessions *sessionTable

	// down ends when Shutdown begins: the streams open then end (a
	// follow would otherwise hold the shutdown for its whole timeout).
	down   context.Context
	goDown context.CancelFunc

	mu   sync.Mutex
	http *http.Server
}

// NewServer makes a server answering GET /v1/ping, GET /v1/version and the
// session endpoints.
func NewServer(o Options) *Server {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		mux:      http.NewServeMux(),
		log:      log,
		version:  Version{Version: o.Version, PID: os.Getpid(), Started: time.Now().UTC()},
		sessions: newSessionTable(o.Runner, log),
	}
	s.down, s.goDown = context.WithCancel(context.Background())
	s.Handle("GET /v1/ping", JSON(func(*http.Request, *None) (*Ping, error) { return &Ping{OK: true}, nil }))
	s.Handle("GET /v1/version", JSON(func(*http.Request, *None) (*Version, error) { v := s.version; return &v, nil }))
	s.Handle("POST /v1/sessions", http.HandlerFunc(s.sessions.serveStart))
	s.Handle("POST /v1/sessions/{id}/signal", JSON(s.sessions.serveSignal))
	return s
}

// Handle registers a handler for a ServeMux pattern such as
// "POST /v1/containers/{name}/stop". Register before Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// None is the request type of an endpoint that takes no parameters: any
// field sent is refused.
type None struct{}

// JSON makes a handler of a typed function: the request body is decoded
// strictly into In (DecodeRequest), the result is answered as JSON, and an
// error as a JSON error of its kind (WriteError).
func JSON[In, Out any](fn func(r *http.Request, in *In) (*Out, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := new(In)
		if err := DecodeRequest(r, in); err != nil {
			WriteError(w, err)
			return
		}
		out, err := fn(r, in)
		if err != nil {
			WriteError(w, err)
			return
		}
		if out == nil {
			writeJSON(w, http.StatusOK, struct{}{})
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// ServeHTTP routes a request, answering JSON errors for unknown paths and
// methods and for panics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	r = r.WithContext(ctx)
	rec := &statusWriter{ResponseWriter: w, down: s.down, cancel: cancel}
	defer rec.stopWatching()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving a request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !rec.wrote {
				WriteError(rec, fmt.Errorf("the agent failed serving %s %s (its log has the details): %v", r.Method, r.URL.Path, v))
			}
		}
		if !rec.wrote {
			rec.status = http.StatusOK // what net/http answers for a handler that wrote nothing
		}
		level := slog.LevelDebug
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		s.log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
	}()
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// Not found or method not allowed: ask the mux which, answer JSON.
		probe := &statusWriter{ResponseWriter: discardWriter{h: http.Header{}}}
		h, _ := s.mux.Handler(r)
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			allow := probe.Header().Get("Allow")
			rec.Header().Set("Allow", allow)
			WriteError(rec, &Error{Message: fmt.Sprintf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, allow), Kind: KindInvalid, Status: http.StatusMethodNotAllowed})
			return
		}
		WriteError(rec, &Error{Message: fmt.Sprintf("no endpoint %s %s in this agent (berth %s)", r.Method, r.URL.Path, s.version.Version), Kind: KindNotFound})
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// statusWriter remembers the status a handler answered, and ends the
// request's context at shutdown once the handler answers a stream.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool

	down   context.Context    // the server's: ends when Shutdown begins
	cancel context.CancelFunc // the request's context
	mu     sync.Mutex
	stop   func() bool // stops watching down
	ended  bool        // down ended the request
}

// streaming makes the request's context end when the server's shutdown
// begins: a stream (a follow, events, stats) is answered until its client
// goes, which a shutdown must not wait for. Other requests are waited for.
func (w *statusWriter) streaming() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil || w.down == nil {
		return
	}
	w.stop = context.AfterFunc(w.down, func() {
		w.mu.Lock()
		w.ended = true
		w.mu.Unlock()
		w.cancel()
	})
}

// shutDown says whether the server's shutdown ended the request.
func (w *statusWriter) shutDown() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ended
}

func (w *statusWriter) stopWatching() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		w.stop()
	}
}

// statusWriterOf finds the server's statusWriter under w's wrappers.
func statusWriterOf(w http.ResponseWriter) *statusWriter {
	for w != nil {
		if sw, ok := w.(*statusWriter); ok {
			return sw
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}

// Serve answers requests on l until Shutdown. Each connection's received
// file descriptors are kept for its handlers (Files).
func (s *Server) Serve(l *net.UnixListener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if fc, ok := c.(*fdConn); ok {
				return context.WithValue(ctx, connKey{}, fc)
			}
			return ctx
		},
	}
	s.mu.Lock()
	if s.http != nil {
		s.mu.Unlock()
		return errors.New("api: Serve called twice")
	}
	s.http = srv
	s.mu.Unlock()
	err := srv.Serve(fdListener{l})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, ends the streams being answered
// (their clients see an error line saying the agent is shutting down),
// sends SIGINT to every running session and waits for them to end and for
// every other request to be answered. When ctx ends first, the sessions' contexts are cancelled
// (an apply aborts what is in flight), and they get a few more seconds
// before every connection is closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.http
	s.mu.Unlock()
	s.goDown()
	s.sessions.interruptAll()
	if srv == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	err := <-done
	if err == nil {
		return nil
	}
	n := s.sessions.abortAll()
	s.log.Warn("sessions did not end in time: aborting them", "sessions", n)
	waited := make(chan struct{})
	go func() { s.sessions.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
	}
	return errors.Join(err, srv.Close())
}

// maxFDs caps the file descriptors kept per connection; more are closed
// as they arrive.
const maxFDs = 8

type connKey struct{}

// Files takes the file descriptors the request's connection has passed so
// far with SCM_RIGHTS, in order: the caller owns and must close them. A
// connection passes them with its first bytes (see Client.Session), so
// they are all there once the request's headers are read.
func Files(r *http.Request) []*os.File {
	c, _ := r.Context().Value(connKey{}).(*fdConn)
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	files := c.files
	c.files = nil
	return files
}

type fdListener struct{ *net.UnixListener }

func (l fdListener) Accept() (net.Conn, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return &fdConn{UnixConn: c}, nil
}

// fdConn reads with recvmsg, keeping the file descriptors that arrive
// with the bytes (Go marks them close-on-exec, so no container inherits
// a user's terminal).
type fdConn struct {
	*net.UnixConn
	mu     sync.Mutex
	files  []*os.File
	closed bool
}

var oobSize = unix.CmsgSpace(maxFDs * 4)

func (c *fdConn) Read(b []byte) (int, error) {
	oob := make([]byte, oobSize)
	n, oobn, _, _, err := c.ReadMsgUnix(b, oob)
	if oobn > 0 {
		c.keep(oob[:oobn])
	}
	return n, err
}

func (c *fdConn) keep(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if c.closed || len(c.files) >= maxFDs {
				unix.Close(fd)
				continue
			}
			c.files = append(c.files, os.NewFile(uintptr(fd), fmt.Sprintf("passed-fd-%d", len(c.files))))
		}
	}
}

func (c *fdConn) Close() error {
	c.mu.Lock()
	files := c.files
	c.files, c.closed = nil, true
	c.mu.Unlock()
	for _, f := range files {
		f.Close()
	}
	return c.UnixConn.Close()
}
