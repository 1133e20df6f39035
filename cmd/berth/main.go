// Command berth is the CLI: it parses flags, calls dsl, plan, apply and the
// agent's host, and prints. It holds no logic of its own beyond that.
//
// The same binary is each container's init: libcontainer re-executes it
// with the argument "init" inside the new namespaces.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"github.com/seed-e88ffcd2/berth/agent"
	"golang.org/x/term"
)

func init() {
	// libcontainer's mount-source goroutine joins a container's mount
	// namespace and exits without unlocking its thread; on the main thread
	// that would leave the process's /proc/self in a dead container's
	// namespace. Keeping main locked to its thread prevents it.
	runtime.LockOSThread()
	// Before main and after nsenter's constructor: if this process is a
	// container's init, it becomes it here and never returns.
	agent.Init()
}

// version is set by the Makefile with -ldflags.
var version = "dev"

func main() {
	os.Exit(runMain(context.Background(), os.Args[1:]))
}

// localCLI is the CLI on this process's own streams.
func localCLI() *CLI {
	return &CLI{
		Stdin:    os.Stdin,
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Color:    term.IsTerminal(int(os.Stdout.Fd())) && os.Getenv("NO_COLOR") == "",
		ErrColor: term.IsTerminal(int(os.Stderr.Fd())) && os.Getenv("NO_COLOR") == "",
		TTY:      term.IsTerminal(int(os.Stdin.Fd())),
	}
}

// CLI holds the streams and surroundings of one command, so that commands
// can be tested and run as an agent's sessions: nothing a command does may
// reach for the process's own cwd, environment, signals or host.
type CLI struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Color          bool // Stdout is a terminal and NO_COLOR is unset
	ErrColor       bool // likewise for Stderr
	TTY            bool // Stdin is a terminal: prompts may be asked

	// Cwd is the directory relative paths are taken from; empty means
	// the process's.
	Cwd string
	// Environ is the environment configurations read; nil means the
	// process's.
	Environ []string
	// Signals subscribes to interruptions (SIGINT, SIGTERM) while an
	// apply runs, and returns how to unsubscribe; nil means the
	// process's signals.
	Signals func() (<-chan os.Signal, func())
	// OpenHost opens the host and says how to release it; nil means
	// opening it in-process (agent.OpenLocal), which is refused while an
	// agent holds the host.
	OpenHost func() (h *agent.Host, release func() error, err error)
	// Resizes subscribes to window-size changes of the user's terminal
	// (SIGWINCH) while exec or run copies it to a container's, and
	// returns how to unsubscribe; nil means the process's SIGWINCH.
	Resizes func() (<-chan os.Signal, func())
}

// abs makes path absolute against the command's working directory.
func (c *CLI) abs(path string) (string, error) {
	if c.Cwd == "" || filepath.IsAbs(path) {
		return filepath.Abs(path)
	}
	return filepath.Join(c.Cwd, path), nil
}

func (c *CLI) environ() []string {
	if c.Environ == nil {
		return os.Environ()
	}
	return c.Environ
}

func (c *CLI) signals() (<-chan os.Signal, func()) {
	if c.Signals != nil {
		return c.Signals()
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	return sigs, func() { signal.Stop(sigs) }
}

func (c *CLI) openHost() (*agent.Host, func() error, error) {
	if c.OpenHost != nil {
		return c.OpenHost()
	}
	h, err := agent.OpenLocal(agent.DefaultConfig())
	if err != nil {
		return nil, nil, err
	}
	return h.Host, h.Close, nil
}

type command struct {
	summary string
	run     func(c *CLI, ctx context.Context, args []string) int
}

var commands = map[string]command{
	"plan":     {"show what apply would change", (*CLI).plan},
	"apply":    {"make the host match the configuration (or a saved plan)", (*CLI).apply},
	"destroy":  {"delete everything the configuration's project owns", (*CLI).destroy},
	"validate": {"check the configuration without looking at the host", (*CLI).validate},
	"fmt":      {"rewrite configuration files in canonical style", (*CLI).fmt},
	"output":   {"show output values", (*CLI).output},
	"state":    {"list, show or forget recorded objects (list | show ADDR | rm ADDR)", (*CLI).state},
	"logs":     {"print a container's output", (*CLI).logs},
	"image":    {"pull or push images (image pull REF | image push NAME REF)", (*CLI).image},
	"lock":     {"pin image references to digests in berth.lock.hcl (-update: resolve again)", (*CLI).lock},
	"version":  {"print berth's version", (*CLI).version},
}

// Run runs one command and returns the process exit code.
func (c *CLI) Run(ctx context.Context, args []string) int {
	if len(args) > 0 && (args[0] == "-version" || args[0] == "--version") {
		args[0] = "version"
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		c.usage()
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(c.Stderr, "berth: unknown command %q\n\n", args[0])
		c.usage()
		return 1
	}
	return cmd.run(c, ctx, args[1:])
}

func (c *CLI) usage() {
	fmt.Fprintln(c.Stderr, "Usage: berth COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(c.Stderr, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(c.Stderr, "\nRun berth COMMAND -h for a command's flags.")
}

func (c *CLI) version(_ context.Context, args []string) int {
	if code, ok := c.noArgs("version", args); !ok {
		return code
	}
	fmt.Fprintln(c.Stdout, "berth", version)
	return 0
}

// errorf prints an error the way every command does.
func (c *CLI) errorf(format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	if c.ErrColor {
		fmt.Fprintf(c.Stderr, "\x1b[31;1mError:\x1b[0m %s\n", msg)
	} else {
		fmt.Fprintf(c.Stderr, "Error: %s\n", msg)
	}
	return 1
}

// newFlags makes a command's flag set; parse errors print usage and
// return false.
func (c *CLI) newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "Usage: berth %s %s\n\nFlags:\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags wherever they stand among the arguments — berth
// state show container.web -json — and returns the positional arguments in
// order. ok false means the command is over, with exit code code.
func parse(fs *flag.FlagSet, args []string) (pos []string, ok bool, code int) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, false, 0
			}
			return nil, false, 1
		}
		if fs.NArg() == 0 {
			return pos, true, 0
		}
		if a := fs.Arg(0); a == "true" || a == "false" {
			// -refresh false parses as -refresh and an argument "false".
			fmt.Fprintf(fs.Output(), "%q is not an argument here: write a yes-or-no flag as -flag=%s\n", a, a)
			return nil, false, 1
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// noArgs refuses positional arguments a command does not take.
func (c *CLI) noArgs(name string, pos []string) (code int, ok bool) {
	if len(pos) > 0 {
		return c.errorf("%s takes no arguments, but was given %s (flags start with -)", name, strings.Join(pos, " ")), false
	}
	return 0, true
}

// multiFlag collects a repeatable flag such as -var.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
