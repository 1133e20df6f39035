// Package api is the berth agent's HTTP API on its unix socket: the wire
// types, a small server toolkit (strict JSON decoding, JSON errors, panic
// recovery, file descriptors received with SCM_RIGHTS), the sessions that
// run CLI commands on the user's own terminal, and the client the CLI uses.
// It may import resource and internal packages; the agent and cmd/berth
// import it, never the other way round.
//
// # Adding a JSON endpoint
//
// Register it on the agent's server with a Go 1.22 ServeMux pattern and a
// typed handler; JSON decodes the request strictly (unknown fields and
// malformed bodies are refused with a JSON error) and encodes the reply:
//
//	srv.Handle("POST /v1/containers/{name}/stop", api.JSON(func(r *http.Request, in *StopRequest) (*StopResult, error) {
//		name := r.PathValue("name")
//		...
//		return nil, resource.Errorf(resource.ErrNotFound, "no container %q: berth ps lists them", name)
//	}))
//
// An error wrapping a resource sentinel becomes the matching kind and
// status (see Kind); a panic becomes a 500 and is logged, and the agent
// keeps serving. The agent registers endpoints through
// agent.DaemonOptions.Register, where the opened Host is at hand. On the
// client side, Client.Do(ctx, "POST", "/v1/containers/web/stop", in, &out)
// returns an error that wraps the same sentinel.
//
// # Adding a session command
//
// A command that needs the user's terminal (its output, prompts, colours,
// Ctrl-C; later exec and run) runs as a session: the CLI passes its stdin,
// stdout and stderr with SCM_RIGHTS and the agent runs the same CLI code on
// them (see Session and SessionRunner). Add the command's name to
// sessionCommands in cmd/berth/remote.go: main then routes it through the
// agent when one answers, and the agent's runner (cmd/berth/agentcmd.go)
// accepts it; nothing here changes. A session's Signals carry what the
// user's terminal sent the client (SIGINT, SIGTERM, SIGWINCH), and one
// SIGINT when the client goes away.
package api

import (
	"os"
	"time"
)

// Version answers GET /v1/version.
type Version struct {
	// Version is the berth version of the agent.
	Version string `json:"version"`
	// PID is the agent's process id.
	PID int `json:"pid"`
	// Started is when the agent started serving.
	Started time.Time `json:"started"`
}

// Ping answers GET /v1/ping.
type Ping struct {
	OK bool `json:"ok"`
}

// SessionRequest is the body of POST /v1/sessions, sent on a connection
// that passed the client's stdin, stdout and stderr with SCM_RIGHTS.
type SessionRequest struct {
	// ID names the session for its signals; the client chooses it at
	// random (letters, digits, '-' and '_', at most 64).
	ID string `json:"id"`
	// Args are the CLI's arguments, without the program name.
	Args []string `json:"args"`
	// Cwd is the client's working directory, absolute.
	Cwd string `json:"cwd"`
	// Env is the client's environment, as os.Environ gives it.
	Env []string `json:"env"`
}

// SessionResult answers POST /v1/sessions when the session ends.
type SessionResult struct {
	ExitCode int `json:"exit_code"`
}

// SignalRequest is the body of POST /v1/sessions/{id}/signal.
type SignalRequest struct {
	// Signal is a name such as "SIGINT" (see Signals).
	Signal string `json:"signal"`
}

// Session is a CLI command running in the agent on the client's terminal.
type Session struct {
	ID   string
	Args []string
	// Cwd and Env are the client's: relative paths and configuration
	// variables are taken from them, not from the agent's.
	Cwd string
	Env []string
	// Stdin, Stdout and Stderr are the client's own, received over the
	// socket. They are closed when the runner returns.
	Stdin, Stdout, Stderr *os.File
	// Signals carries the signals the client received, and one SIGINT if
	// the client's connection drops or the agent shuts down. It is
	// closed when the session ends.
	Signals <-chan os.Signal
}
