package main

import (
	"context"
	"errors"
	"os"

	"github.com/seed-e88ffcd2/berth/agent"
	"github.com/seed-e88ffcd2/berth/agent/api"
	"golang.org/x/term"
)

// sessionCommands touch the host: when an agent runs, they run in it as
// sessions on this process's terminal (agent/api says how), so that only
// the agent holds the store. A new command that touches the host is
// added here; validate, fmt, version, help and agent itself run here. The
// verbs (ps, stop, logs, …) are no sessions: they use the agent's API.
var sessionCommands = map[string]bool{
	"plan":    true,
	"apply":   true,
	"destroy": true,
	"output":  true,
	"state":   true,
	"exec":    true,
	"run":     true,
	"image":   true,
	"lock":    true,
	"build":   true, // it runs containers
}

// runMain runs the command line: through the agent when one answers on
// its socket, in this process otherwise.
func runMain(ctx context.Context, args []string) int {
	if len(args) > 0 && sessionCommands[args[0]] {
		if code, ok := runInAgent(ctx, args); ok {
			return code
		}
	}
	return localCLI().Run(ctx, args)
}

// runInAgent runs args as a session of the agent; ok false means no agent
// runs, and nothing was done.
func runInAgent(ctx context.Context, args []string) (code int, ok bool) {
	return runInAgentOn(ctx, agent.DefaultConfig().Socket, args, os.Stdin, os.Stdout, os.Stderr)
}

// runInAgentOn runs args as a session of the agent at socket on the
// given terminal. An interactive command (exec -it, run -it) puts the
// terminal in raw mode from the agent; whatever becomes of the session
// (an agent killed in the middle of it, say), the terminal is given back
// in the state it was in.
func runInAgentOn(ctx context.Context, socket string, args []string, stdin, stdout, stderr *os.File) (code int, ok bool) {
	client, err := api.Dial(socket)
	if errors.Is(err, api.ErrNoAgent) {
		return 0, false
	}
	if err != nil {
		return localCLI().errorf("%v", err), true
	}
	defer client.Close()
	cwd, err := os.Getwd()
	if err != nil {
		return localCLI().errorf("working directory: %v", err), true
	}
	restore := keepTerminalState(stdin)
	code, err = client.Session(ctx, args, cwd, os.Environ(), stdin, stdout, stderr)
	restore() // before any error is printed: not on a raw terminal
	if errors.Is(err, api.ErrNoAgent) {
		return 0, false // the agent stopped between the two connections
	}
	if err != nil {
		return localCLI().errorf("%v", err), true
	}
	return code, true
}

// keepTerminalState saves the state of f when it is a terminal, and
// returns what puts it back.
func keepTerminalState(f *os.File) (restore func()) {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return func() {}
	}
	st, err := term.GetState(fd)
	if err != nil {
		return func() {}
	}
	return func() { _ = term.Restore(fd, st) }
}
