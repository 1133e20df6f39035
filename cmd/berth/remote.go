package main

import (
	"context"
	"errors"
	"os"

	"github.com/seed-e88ffcd2/berth/agent"
	"github.com/seed-e88ffcd2/berth/agent/api"
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
	client, err := api.Dial(agent.DefaultConfig().Socket)
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
	code, err = client.Session(ctx, args, cwd, os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, api.ErrNoAgent) {
		return 0, false // the agent stopped between the two connections
	}
	if err != nil {
		return localCLI().errorf("%v", err), true
	}
	return code, true
}
