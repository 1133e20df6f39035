package main

import (
	"context"
	"io"
	"os"
	"sync"

	"github.com/seed-e88ffcd2/berth/agent"
)

func init() {
	commands["exec"] = command{"run a command in a running container (-it: a shell on its terminal)", (*CLI).exec}
	commands["run"] = command{"run a one-off container, as docker run does (--rm, -it, -d, -v, -p, ...)", (*CLI).runOneOff}
}

// exec is berth exec: a process in a running container, its exit code
// berth's.
//
// With -t it gets a new terminal, copied to and from the user's (raw
// mode, window size followed); without, the CLI's own descriptors are
// given to it as they are (stdin only with -i). A SIGINT or SIGTERM that
// reaches berth itself (not the Ctrl-C a raw terminal passes on as a key)
// kills the process, and berth exits 128 + the signal.
func (c *CLI) exec(ctx context.Context, args []string) int {
	fs := c.dockerFlags("exec", "[-i] [-t] [-e KEY=value] [-u USER] [-w DIR] CONTAINER COMMAND [ARG...]")
	interactive := fs.BoolP("interactive", "i", false, "pass stdin to the command")
	tty := fs.BoolP("tty", "t", false, "give the command a terminal (with -i: yours, in raw mode)")
	env := fs.StringArrayP("env", "e", nil, "set an environment variable (repeatable); -e KEY passes KEY from here")
	user := fs.StringP("user", "u", "", "run as USER[:GROUP], by name or number (default: the container's user)")
	workdir := fs.StringP("workdir", "w", "", "working directory in the container (default: the container's)")
	if code, ok := c.parseDocker(fs, args); !ok {
		return code
	}
	pos := fs.Args()
	if len(pos) < 2 {
		c.errorf("exec needs a container and a command: berth exec [-it] CONTAINER COMMAND [ARG...]")
		return exitBerth
	}
	if *tty && *interactive && !isTerminal(fileOf(c.Stdin)) {
		c.errorf("%s", ttyNeedsTerminal)
		return exitBerth
	}
	envs, err := c.envList(*env)
	if err != nil {
		c.errorf("%v", err)
		return exitBerth
	}
	if *tty {
		envs = withTerm(envs)
	}
	host, release, err := c.openHost()
	if err != nil {
		c.errorf("%v", err)
		return exitBerth
	}
	defer release()

	o := agent.ExecOptions{Args: pos[1:], Env: envs, User: *user, Cwd: *workdir, TTY: *tty}
	var sink *consoleSink
	if *tty {
		sink = &consoleSink{c: c, input: *interactive}
		o.Console = sink.take
	} else {
		if *interactive {
			o.Stdin = inStream(c.Stdin)
		}
		o.Stdout, o.Stderr = outStream(c.Stdout), outStream(c.Stderr)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu          sync.Mutex
		interrupted os.Signal
	)
	sigs, unsubscribe := c.signals()
	defer unsubscribe()
	go func() {
		select {
		case sig := <-sigs:
			mu.Lock()
			interrupted = sig
			mu.Unlock()
			cancel() // kills the process
		case <-ctx.Done():
		}
	}()

	code, err := host.Exec(ctx, pos[0], o)
	if sink != nil {
		if aerr := sink.done(); aerr != nil && err == nil {
			c.errorf("%v", aerr)
		}
	}
	mu.Lock()
	sig := interrupted
	mu.Unlock()
	if sig != nil {
		return interruptCode(sig)
	}
	if err != nil {
		return c.commandError(err)
	}
	return code
}

// inStream is the CLI's stdin as the process gets it: the file itself
// when it is one, so nothing copies it.
func inStream(r io.Reader) io.Reader {
	if f := fileOf(r); f != nil {
		return f
	}
	return r
}

// outStream is likewise for stdout and stderr.
func outStream(w io.Writer) io.Writer {
	if f := fileOf(w); f != nil {
		return f
	}
	return w
}
