package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/resource"
)

// FuzzDecodeRequest: whatever arrives, the decoder returns either a value
// that survives a round trip or an invalid-request error that says what
// is wrong with the body; it never panics.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"id":"a1","args":["plan","-dir","x"],"cwd":"/tmp","env":["A=B"]}`},
		{"application/json; charset=utf-8", `{"id":"x"}`},
		{"application/json", ``},
		{"application/json", `   `},
		{"application/json", `null`},
		{"application/json", `[]`},
		{"application/json", `"s"`},
		{"application/json", `{"id":1}`},
		{"application/json", `{"args":"plan"}`},
		{"application/json", `{"x":1}`},
		{"application/json", `{"id":"a"}{"id":"b"}`},
		{"application/json", `{"id":"a"} junk`},
		{"application/json", `{"id":"a"`},
		{"application/json", `{"id":"\ud800"}`},
		{"application/json", "{\"id\":\"\xff\"}"},
		{"application/json", `{"env":[null,"A"]}`},
		{"application/json", `{"ID":"case"}`},
		{"text/plain", `{"id":"a"}`},
		{"", `{}`},
		{"application/json;;", `{}`},
		{"application/json", strings.Repeat("[", 10000)},
		{"application/json", `{"args":[` + strings.Repeat(`"a",`, 300) + `"b"]}`},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		var req SessionRequest
		err := decode(ct, bytes.NewReader(body), 4096, &req)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalid || !strings.HasPrefix(e.Message, "request body: ") {
				t.Fatalf("decode(%q, %q) = %#v, want an invalid-request error about the body", ct, body, err)
			}
			if e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge && e.Status != http.StatusUnsupportedMediaType {
				t.Fatalf("decode(%q, %q): status %d", ct, body, e.Status)
			}
			return
		}
		b, err := json.Marshal(&req)
		if err != nil {
			t.Fatalf("decoded %q into %#v, which does not encode: %v", body, req, err)
		}
		var again SessionRequest
		if err := decode("application/json", bytes.NewReader(b), 1<<20, &again); err != nil {
			t.Fatalf("decoded %q into %#v, whose encoding %s does not decode: %v", body, req, b, err)
		}
		if !reflect.DeepEqual(normal(req), normal(again)) {
			t.Fatalf("round trip of %q: %#v then %#v", body, req, again)
		}
	})
}

// normal treats empty and nil slices alike (JSON null and [] both decode
// to what encodes back as one of them).
func normal(r SessionRequest) SessionRequest {
	if len(r.Args) == 0 {
		r.Args = nil
	}
	if len(r.Env) == 0 {
		r.Env = nil
	}
	return r
}

// testServer serves srv on a socket in a temporary directory.
func testServer(t *testing.T, o Options) (*Server, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(o)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv, path
}

// rawClient speaks plain HTTP on the socket, passing no descriptors.
func rawClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

func TestMalformedRequestsAnswerJSONErrors(t *testing.T) {
	srv, path := testServer(t, Options{Version: "test", Runner: func(context.Context, *Session) int { return 0 }})
	srv.Handle("POST /v1/echo", JSON(func(_ *http.Request, in *SignalRequest) (*SignalRequest, error) { return in, nil }))
	hc := rawClient(path)
	const session = `{"id":"abc","args":["plan"],"cwd":"/"}`
	for _, tc := range []struct {
		name, method, path, ct, body string
		status                       int
		kind                         Kind
		want                         string
	}{
		{"bad JSON", "POST", "/v1/sessions", "application/json", `{"id":`, 400, KindInvalid, "request body: the JSON ends"},
		{"syntax error", "POST", "/v1/echo", "application/json", `{"signal" "x"}`, 400, KindInvalid, "invalid JSON at byte"},
		{"unknown field", "POST", "/v1/echo", "application/json", `{"signal":"x","x":1}`, 400, KindInvalid, `request body: unknown field "x"`},
		{"wrong type", "POST", "/v1/echo", "application/json", `{"signal":1}`, 400, KindInvalid, `field "signal" must be a string, not a JSON number`},
		{"not an object", "POST", "/v1/echo", "application/json", `["x"]`, 400, KindInvalid, "must be a JSON object, not an array"},
		{"two values", "POST", "/v1/echo", "application/json", `{}{}`, 400, KindInvalid, "more than one JSON value"},
		{"wrong content type", "POST", "/v1/echo", "text/plain", `{"signal":"x"}`, 415, KindInvalid, "Content-Type must be application/json"},
		{"huge body", "POST", "/v1/echo", "application/json", `{"signal":"` + strings.Repeat("x", 2<<20) + `"}`, 413, KindInvalid, "larger than"},
		{"session without descriptors", "POST", "/v1/sessions", "application/json", session, 400, KindInvalid, "stdin, stdout and stderr passed with SCM_RIGHTS"},
		{"parameters to ping", "GET", "/v1/ping", "application/json", `{"verbose":true}`, 400, KindInvalid, `unknown field "verbose"`},
		{"unknown path", "GET", "/v1/nope", "", "", 404, KindNotFound, "no endpoint GET /v1/nope"},
		{"wrong method", "DELETE", "/v1/version", "", "", 405, KindInvalid, "method not allowed (allowed: GET, HEAD)"},
		{"bad signal", "POST", "/v1/sessions/abc/signal", "application/json", `{"signal":"SIGKILL"}`, 400, KindInvalid, `signal "SIGKILL": send one of`},
		{"signal to no session", "POST", "/v1/sessions/abc/signal", "application/json", `{"signal":"SIGINT"}`, 404, KindNotFound, `no session "abc"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://berth"+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			err = readAnswer(resp, nil)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("answer %d %v, want a JSON error", resp.StatusCode, err)
			}
			if e.Status != tc.status || e.Kind != tc.kind || !strings.Contains(e.Message, tc.want) {
				t.Errorf("got %d %s %q, want %d %s containing %q", e.Status, e.Kind, e.Message, tc.status, tc.kind, tc.want)
			}
		})
	}
}

func TestPanicAnswers500AndServingGoesOn(t *testing.T) {
	var logs syncBuffer
	srv, path := testServer(t, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	srv.Handle("GET /v1/boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("a handler's bug")
	}))
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		err := c.Do(context.Background(), "GET", "/v1/boom", nil, nil)
		var e *Error
		if !errors.As(err, &e) || e.Status != 500 || e.Kind != KindInternal || !strings.Contains(e.Message, "the agent failed serving GET /v1/boom") {
			t.Fatalf("panicking handler: %#v", err)
		}
		var v Version
		if err := c.Do(context.Background(), "GET", "/v1/version", nil, &v); err != nil || v.PID != os.Getpid() {
			t.Fatalf("after the panic: %v %+v", err, v)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"panic serving a request"`) || !strings.Contains(logs.String(), "a handler's bug") {
		t.Errorf("the panic was not logged:\n%s", logs.String())
	}
}

func TestErrorsKeepTheirSentinel(t *testing.T) {
	srv, path := testServer(t, Options{})
	for _, kind := range []error{resource.ErrNotFound, resource.ErrAlreadyExists, resource.ErrConflict, resource.ErrUnavailable, ErrInvalid} {
		srv.Handle("GET /v1/"+strings.ReplaceAll(kind.Error(), " ", "-"), JSON(func(*http.Request, *None) (*None, error) {
			return nil, fmt.Errorf("doing it: %w", resource.Errorf(kind, "it went %s", kind))
		}))
	}
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, kind := range []error{resource.ErrNotFound, resource.ErrAlreadyExists, resource.ErrConflict, resource.ErrUnavailable, ErrInvalid} {
		err := c.Do(context.Background(), "GET", "/v1/"+strings.ReplaceAll(kind.Error(), " ", "-"), nil, nil)
		if !errors.Is(err, kind) || err.Error() != "doing it: it went "+kind.Error() {
			t.Errorf("%v: client got %v", kind, err)
		}
	}
}

func TestDialWithoutAgent(t *testing.T) {
	dir := t.TempDir()
	if _, err := Dial(filepath.Join(dir, "none.sock")); !errors.Is(err, ErrNoAgent) {
		t.Errorf("no socket: %v, want ErrNoAgent", err)
	}
	// A socket left by a killed agent: nobody listens.
	path := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := Dial(path); !errors.Is(err, ErrNoAgent) {
		t.Errorf("stale socket: %v, want ErrNoAgent", err)
	}
}

// pipes are a session's stdin, stdout and stderr: the client passes the
// ends in, out and errw, the test holds the others.
type pipes struct {
	in, inW, outR, out, errR, errw *os.File
}

func newPipes(t *testing.T) *pipes {
	var p pipes
	var err error
	if p.in, p.inW, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	if p.outR, p.out, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	if p.errR, p.errw, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, f := range []*os.File{p.in, p.inW, p.outR, p.out, p.errR, p.errw} {
			f.Close()
		}
	})
	return &p
}

// closeClientEnds closes the client's copies, so that reading the other
// ends sees EOF once the agent closed its copies too.
func (p *pipes) closeClientEnds() {
	p.in.Close()
	p.out.Close()
	p.errw.Close()
}

func TestSessionRunsOnPassedDescriptors(t *testing.T) {
	_, path := testServer(t, Options{Runner: func(ctx context.Context, s *Session) int {
		line, _ := io.ReadAll(InterruptibleReader(ctx, s.Stdin))
		fmt.Fprintf(s.Stdout, "args=%s cwd=%s env=%s stdin=%s", strings.Join(s.Args, ","), s.Cwd, strings.Join(s.Env, ","), line)
		fmt.Fprint(s.Stderr, "to stderr")
		return 7
	}})
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := newPipes(t)
	p.inW.WriteString("yes\n")
	p.inW.Close()
	code, err := c.Session(context.Background(), []string{"plan", "-dir", "x"}, "/work", []string{"A=B"}, p.in, p.out, p.errw)
	if err != nil || code != 7 {
		t.Fatalf("Session = %d, %v; want 7", code, err)
	}
	p.closeClientEnds()
	out, _ := io.ReadAll(p.outR) // EOF: the agent closed its copies
	errOut, _ := io.ReadAll(p.errR)
	if string(out) != "args=plan,-dir,x cwd=/work env=A=B stdin=yes\n" || string(errOut) != "to stderr" {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
}

func TestSessionSignals(t *testing.T) {
	started := make(chan string, 1)
	got := make(chan os.Signal, 4)
	srv, path := testServer(t, Options{Runner: func(ctx context.Context, s *Session) int {
		started <- s.Args[0]
		sig, ok := <-s.Signals
		if !ok {
			return 99
		}
		got <- sig
		return 3
	}})
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := newPipes(t)

	session := func(ctx context.Context, name string) (chan int, chan error) {
		codes, errs := make(chan int, 1), make(chan error, 1)
		go func() {
			code, err := c.Session(ctx, []string{name}, "/", nil, p.in, p.out, p.errw)
			codes <- code
			errs <- err
		}()
		if n := <-started; n != name {
			t.Fatalf("started %s", n)
		}
		return codes, errs
	}

	t.Run("the client's SIGINT is forwarded", func(t *testing.T) {
		codes, errs := session(context.Background(), "forwarded")
		// Session catches SIGINT while it runs: the test process lives.
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		if sig := <-got; sig != syscall.SIGINT {
			t.Errorf("session got %v", sig)
		}
		if code, err := <-codes, <-errs; code != 3 || err != nil {
			t.Errorf("Session = %d, %v", code, err)
		}
	})
	t.Run("a client gone interrupts its session", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		codes, errs := session(ctx, "dropped")
		cancel()
		select {
		case sig := <-got:
			if sig != syscall.SIGINT {
				t.Errorf("session got %v", sig)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the session of a client gone got no SIGINT")
		}
		<-codes
		if err := <-errs; err == nil {
			t.Error("Session of a cancelled context returned no error")
		}
	})
	t.Run("shutdown interrupts sessions", func(t *testing.T) {
		codes, errs := session(context.Background(), "shutdown")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if sig := <-got; sig != syscall.SIGINT {
			t.Errorf("session got %v", sig)
		}
		if code, err := <-codes, <-errs; code != 3 || err != nil {
			t.Errorf("Session = %d, %v", code, err)
		}
	})
}

// TestDescriptorsAreCapped: a connection passing more descriptors than
// maxFDs keeps maxFDs; the rest are closed, not leaked.
func TestDescriptorsAreCapped(t *testing.T) {
	srv, path := testServer(t, Options{})
	counted := make(chan int, 1)
	srv.Handle("POST /v1/count", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		files := Files(r)
		for _, f := range files {
			f.Close()
		}
		counted <- len(files)
		WriteError(w, Invalid("counted"))
	}))
	before := openFDs(t)
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	fds := make([]int, 20)
	for i := range fds {
		fds[i] = int(os.Stdin.Fd())
	}
	rc := &rightsConn{UnixConn: conn, fds: fds}
	if _, err := rc.Write([]byte("POST /v1/count HTTP/1.1\r\nHost: berth\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if n := <-counted; n != maxFDs {
		t.Errorf("the handler got %d descriptors, want %d", n, maxFDs)
	}
	io.Copy(io.Discard, conn)
	conn.Close()
	time.Sleep(100 * time.Millisecond)
	if after := openFDs(t); after > before+1 {
		t.Errorf("%d descriptors open before, %d after: passed descriptors leaked", before, after)
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	return len(entries)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestShutdownEndsStreams: a stream that waits for more (a follow) ends
// when the shutdown begins, with an error line saying why, so the
// shutdown does not wait for its timeout; a plain request in flight is
// still waited for, its context not cancelled.
func TestShutdownEndsStreams(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Options{Version: "test"})
	streamEnded := make(chan struct{})
	srv.Handle("GET /v1/follow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(streamEnded)
		lw := NewLineWriter(w)
		if lw.Write(map[string]int{"n": 1}) != nil {
			return
		}
		<-r.Context().Done() // a follow: lines come until the client goes
		lw.Fail(r.Context().Err())
	}))
	slowStarted, release := make(chan struct{}), make(chan struct{})
	srv.Handle("POST /v1/slow", JSON(func(r *http.Request, _ *None) (*Ping, error) {
		close(slowStarted)
		<-release
		return &Ping{OK: r.Context().Err() == nil}, nil
	}))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lines, err := c.Stream(context.Background(), http.MethodGet, "/v1/follow")
	if err != nil {
		t.Fatal(err)
	}
	defer lines.Close()
	var first map[string]int
	if err := lines.Next(&first); err != nil || first["n"] != 1 {
		t.Fatalf("first line: %v, %v", first, err)
	}
	slow := make(chan Ping, 1)
	go func() {
		var p Ping
		if err := c.Do(context.Background(), http.MethodPost, "/v1/slow", nil, &p); err != nil {
			t.Errorf("slow request: %v", err)
		}
		slow <- p
	}()
	<-slowStarted

	const timeout = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	shutdown := make(chan error, 1)
	start := time.Now()
	go func() { shutdown <- srv.Shutdown(ctx) }()
	select {
	case <-streamEnded:
	case <-time.After(timeout / 2):
		t.Fatal("the shutdown did not end the stream")
	}
	var next map[string]int
	if err := lines.Next(&next); !errors.Is(err, resource.ErrUnavailable) || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("the stream's last line: %v (%v)", err, next)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a plain request was in flight", err)
	default:
	}
	close(release)
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if d := time.Since(start); d >= timeout {
		t.Errorf("Shutdown took %v, its whole timeout", d)
	}
	if p := <-slow; !p.OK {
		t.Error("the plain request's context was cancelled by the shutdown")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
