package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoAgent says nothing listens on the agent's socket: the CLI then runs
// the command itself.
var ErrNoAgent = errors.New("no berth agent runs")

// Client talks to an agent over its unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// Dial connects to the agent at socket and checks that it answers. An
// error wrapping ErrNoAgent means no agent listens there (no socket, or a
// socket nobody serves).
func Dial(socket string) (*Client, error) {
	c := &Client{socket: socket}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.dial(ctx)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var p Ping
	if err := c.Do(ctx, http.MethodGet, "/v1/ping", nil, &p); err != nil {
		return nil, err
	}
	return c, nil
}

// Socket is the path the client connects to.
func (c *Client) Socket() string { return c.socket }

// Close drops the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) dial(ctx context.Context) (*net.UnixConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return nil, &connectError{socket: c.socket, err: err}
	}
	return conn.(*net.UnixConn), nil
}

// connectError is a failure to reach the socket; nothing was sent.
type connectError struct {
	socket string
	err    error
}

func (e *connectError) noAgent() bool {
	return errors.Is(e.err, syscall.ENOENT) || errors.Is(e.err, syscall.ECONNREFUSED) || errors.Is(e.err, syscall.ENOTDIR)
}

func (e *connectError) Error() string {
	switch {
	case e.noAgent():
		return fmt.Sprintf("no berth agent runs at %s", e.socket)
	case errors.Is(e.err, syscall.EACCES):
		return fmt.Sprintf("the agent's socket %s is root's only: run berth as root", e.socket)
	}
	return fmt.Sprintf("connecting to the agent at %s: %v", e.socket, e.err)
}

// Unwrap is ErrNoAgent when no agent listens, else the cause.
func (e *connectError) Unwrap() error {
	if e.noAgent() {
		return ErrNoAgent
	}
	return e.err
}

// Do sends a JSON request (in may be nil) and decodes the answer into out
// (which may be nil). A JSON error answer is returned as *Error, which
// wraps the resource sentinel of its kind.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return do(ctx, c.http, method, path, in, out)
}

func do(ctx context.Context, hc *http.Client, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://berth"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ce *connectError
		if errors.As(err, &ce) {
			return ce // the url.Error around it adds nothing
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	return readAnswer(resp, out)
}

func readAnswer(resp *http.Response, out any) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the agent's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e Error
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			e.Status = resp.StatusCode
			if e.Kind == "" {
				e.Kind = KindInternal
			}
			return &e
		}
		return &Error{Message: fmt.Sprintf("the agent answered %s: %s", resp.Status, strings.TrimSpace(string(b))), Kind: KindInternal, Status: resp.StatusCode}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the agent's answer: %w", err)
	}
	return nil
}

// forwarded are the signals Session forwards to the agent while the
// session runs.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGWINCH}

// Session runs a CLI command in the agent on this process's terminal: it
// passes stdin, stdout and stderr with SCM_RIGHTS, forwards SIGINT,
// SIGTERM and SIGWINCH (which this process then no longer acts on), and
// returns the command's exit code. An error wrapping ErrNoAgent means
// nothing was sent: the agent had gone.
func (c *Client) Session(ctx context.Context, args []string, cwd string, env []string, stdin, stdout, stderr *os.File) (int, error) {
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	req := SessionRequest{ID: hex.EncodeToString(id), Args: args, Cwd: cwd, Env: env}
	if req.Args == nil {
		req.Args = []string{}
	}
	fds := []int{int(stdin.Fd()), int(stdout.Fd()), int(stderr.Fd())}
	// The session's connection is its own: it carries the descriptors
	// and, by closing, tells the agent the client is gone.
	hc := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := c.dial(ctx)
			if err != nil {
				return nil, err
			}
			return &rightsConn{UnixConn: conn, fds: fds}, nil
		},
	}}
	defer hc.CloseIdleConnections()

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	forwarding := make(chan struct{})
	go func() {
		defer close(forwarding)
		for {
			select {
			case sig := <-sigs:
				c.forward(req.ID, sig, done)
			case <-done:
				return
			}
		}
	}()
	var res SessionResult
	err := do(ctx, hc, http.MethodPost, "/v1/sessions", &req, &res)
	close(done)
	<-forwarding
	if err != nil {
		if errors.Is(err, ErrNoAgent) {
			return 1, err
		}
		var e *Error
		if errors.As(err, &e) {
			return 1, err
		}
		return 1, fmt.Errorf("the agent at %s did not finish the command (its log says why): %w", c.socket, err)
	}
	return res.ExitCode, nil
}

// forward sends one signal to the session. A signal sent right after the
// session was requested may arrive before the agent knows the session:
// not-found is tried again for a moment.
func (c *Client) forward(id string, sig os.Signal, done <-chan struct{}) {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 20 {
		err := c.Do(ctx, http.MethodPost, "/v1/sessions/"+id+"/signal", &SignalRequest{Signal: unix.SignalName(s)}, nil)
		var e *Error
		if err == nil || !errors.As(err, &e) || e.Kind != KindNotFound {
			return
		}
		select {
		case <-done:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rightsConn passes its descriptors with the first bytes it writes.
type rightsConn struct {
	*net.UnixConn
	fds  []int
	sent bool
}

func (c *rightsConn) Write(b []byte) (int, error) {
	if c.sent || len(b) == 0 {
		return c.UnixConn.Write(b)
	}
	c.sent = true
	n, _, err := c.WriteMsgUnix(b, unix.UnixRights(c.fds...), nil)
	if err != nil || n == len(b) {
		return n, err
	}
	m, err := c.UnixConn.Write(b[n:])
	return n + m, err
}
