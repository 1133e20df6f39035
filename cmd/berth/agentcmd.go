package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/seed-e88ffcd2/berth/agent"
	"github.com/seed-e88ffcd2/berth/agent/api"
	"golang.org/x/term"
)

func init() {
	// Here rather than in the commands table, whose initialisation cannot
	// refer to the sessions that run the table's commands.
	commands["agent"] = command{"run the agent: it holds the host, and commands run through it", (*CLI).daemon}
}

// daemon is `berth agent`: the agent in the foreground until SIGINT or
// SIGTERM.
func (c *CLI) daemon(ctx context.Context, args []string) int {
	fs := c.newFlags("agent", "[flags]")
	socket := fs.String("socket", "", "the API socket (default $BERTH_SOCKET, or berth.sock in $BERTH_RUN_DIR)")
	logFormat := fs.String("log-format", "text", "log lines as text or json")
	pos, ok, code := parse(fs, args)
	if !ok {
		return code
	}
	if code, ok := c.noArgs("agent", pos); !ok {
		return code
	}
	cfg := agent.DefaultConfig()
	if *socket != "" {
		abs, err := c.abs(*socket)
		if err != nil {
			return c.errorf("%v", err)
		}
		cfg.Socket = abs
	}
	var h slog.Handler
	switch *logFormat {
	case "text":
		h = slog.NewTextHandler(c.Stderr, nil)
	case "json":
		h = slog.NewJSONHandler(c.Stderr, nil)
	default:
		return c.errorf("-log-format %q: use text or json", *logFormat)
	}
	// dsl.WriteDiagnostics names files relative to the process's working
	// directory: in the run directory, where no configuration lives,
	// only the names sessions make relative to their own stay so.
	if err := os.MkdirAll(cfg.RunDir, 0o700); err == nil {
		_ = os.Chdir(cfg.RunDir)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal stops the agent at once
	}()
	err := agent.Serve(ctx, cfg, agent.DaemonOptions{
		Logger:   slog.New(h),
		Version:  version,
		Sessions: sessionRunner,
	})
	if err != nil {
		return c.errorf("%v", err)
	}
	return 0
}

// sessionRunner runs sessions as the CLI, on the client's terminal, with
// the agent's one host.
func sessionRunner(host *agent.Host) api.SessionRunner {
	return func(ctx context.Context, s *api.Session) int {
		return runSession(ctx, s, host)
	}
}

func runSession(ctx context.Context, s *api.Session, host *agent.Host) int {
	name := ""
	if len(s.Args) > 0 {
		name = s.Args[0]
	}
	if !sessionCommands[name] {
		fmt.Fprintf(s.Stderr, "Error: berth %s does not run through the agent: run it on its own\n", name)
		return 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stdout, stderr := &gate{w: s.Stdout}, &gate{w: s.Stderr}
	sigs := &signalRouter{kill: func() {
		// What the signal's default action would have done to the CLI:
		// it stops, and says nothing more.
		stdout.shut.Store(true)
		stderr.shut.Store(true)
		cancel()
	}}
	go sigs.route(s.Signals)
	noColor := getenv(s.Env, "NO_COLOR") != ""
	c := &CLI{
		Stdin:    api.InterruptibleReader(ctx, s.Stdin),
		Stdout:   stdout,
		Stderr:   stderr,
		Color:    term.IsTerminal(int(s.Stdout.Fd())) && !noColor,
		ErrColor: term.IsTerminal(int(s.Stderr.Fd())) && !noColor,
		TTY:      term.IsTerminal(int(s.Stdin.Fd())),
		Cwd:      s.Cwd,
		Environ:  s.Env,
		Signals:  sigs.subscribe,
		Resizes:  sigs.subscribeResizes,
		OpenHost: func() (*agent.Host, func() error, error) {
			return host, func() error { return nil }, nil // the agent keeps it
		},
	}
	code := c.Run(ctx, s.Args)
	if sig := sigs.killedBy(); sig != 0 {
		return 128 + int(sig)
	}
	return code
}

// getenv is os.Getenv for an environment list.
func getenv(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// gate writes through until shut, then discards.
type gate struct {
	w    io.Writer
	shut atomic.Bool
}

func (g *gate) Write(p []byte) (int, error) {
	if g.shut.Load() {
		return len(p), nil
	}
	return g.w.Write(p)
}

// File is the client's descriptor behind the gate: exec and run give it to
// a container's process as it is, or copy a terminal to it.
func (g *gate) File() *os.File {
	f, _ := g.w.(*os.File)
	return f
}

// signalRouter hands a session's signals to the apply that subscribed
// (CLI.Signals); with none subscribed, an interruption ends the command
// as the signal's default action ends a CLI process.
type signalRouter struct {
	kill func()

	mu      sync.Mutex
	sub     chan os.Signal
	resizes chan os.Signal // SIGWINCH, while exec or run copies a terminal
	killed  syscall.Signal
}

func (r *signalRouter) route(in <-chan os.Signal) {
	for sig := range in {
		s, _ := sig.(syscall.Signal)
		r.mu.Lock()
		switch {
		case s == syscall.SIGWINCH:
			if r.resizes != nil {
				select {
				case r.resizes <- sig:
				default: // one pending is enough: the size is read when it is taken
				}
			}
		case s != syscall.SIGINT && s != syscall.SIGTERM && s != syscall.SIGHUP && s != syscall.SIGQUIT:
		case r.sub != nil && (s == syscall.SIGINT || s == syscall.SIGTERM):
			select {
			case r.sub <- sig:
			default:
			}
		case r.killed == 0:
			r.killed = s
			r.kill()
		}
		r.mu.Unlock()
	}
}

func (r *signalRouter) subscribe() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 2)
	r.mu.Lock()
	r.sub = ch
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		if r.sub == ch {
			r.sub = nil
		}
		r.mu.Unlock()
	}
}

// subscribeResizes is CLI.Resizes: the client's SIGWINCH.
func (r *signalRouter) subscribeResizes() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	r.mu.Lock()
	r.resizes = ch
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		if r.resizes == ch {
			r.resizes = nil
		}
		r.mu.Unlock()
	}
}

func (r *signalRouter) killedBy() syscall.Signal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.killed
}
