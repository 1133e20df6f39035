package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// What berth exec and berth run share: Docker-style flags, and the user's
// side of a container's terminal. Both run in this process or, when an
// agent runs, in the agent as a session on the client's own descriptors;
// either way the CLI's streams are files, and a terminal is put in raw
// mode and copied to and from the container's pseudo-terminal here.

// Exit codes of berth exec and run for what went wrong before or around
// the container's process, as Docker has them: every other code is the
// process's own.
const (
	exitBerth = 125 // berth could not run the process (a bad flag, a missing container)
)

// fileOf is the file a CLI stream is, or wraps (a session's streams are
// the client's descriptors, behind writers that stop at an interrupt);
// nil when it is none, as in tests that give buffers.
func fileOf(stream any) *os.File {
	switch s := stream.(type) {
	case *os.File:
		return s
	case interface{ File() *os.File }:
		return s.File()
	}
	return nil
}

func isTerminal(f *os.File) bool { return f != nil && term.IsTerminal(int(f.Fd())) }

// resizes subscribes to window-size changes of the user's terminal; nil
// Resizes means this process's SIGWINCH.
func (c *CLI) resizes() (<-chan os.Signal, func()) {
	if c.Resizes != nil {
		return c.Resizes()
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	return ch, func() { signal.Stop(ch) }
}

// dockerFlags is a flag set that parses as docker run and docker exec do:
// -it, -v$(pwd):/src, --rm, repeated -e, and parsing stops at the first
// argument that is not a flag, so that the container's command keeps its
// own flags.
func (c *CLI) dockerFlags(name, usage string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(c.Stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "Usage: berth %s %s\n\nFlags:\n%s", name, usage, fs.FlagUsages())
	}
	return fs
}

// parseDocker parses args; ok false ends the command with code.
func (c *CLI) parseDocker(fs *pflag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		return 0, false
	}
	if err != nil {
		c.errorf("%v (berth %s --help lists the flags)", err, fs.Name())
		return exitBerth, false
	}
	return 0, true
}

// envList turns -e flags into KEY=value: a bare KEY takes its value from
// the command's environment, as Docker does, and is left out when unset
// there.
func (c *CLI) envList(flags []string) ([]string, error) {
	var out []string
	for _, e := range flags {
		k, _, hasValue := strings.Cut(e, "=")
		if k == "" || strings.ContainsAny(k, " \t\n") {
			return nil, fmt.Errorf("-e %q: write -e KEY=value, or -e KEY to pass KEY from this environment", e)
		}
		if hasValue {
			out = append(out, e)
			continue
		}
		if v, ok := lookupEnv(c.environ(), k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out, nil
}

// withTerm adds TERM=xterm to a terminal's environment unless -e set
// TERM, as Docker does.
func withTerm(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "TERM=") {
			return env
		}
	}
	return append(env, "TERM=xterm")
}

func lookupEnv(env []string, name string) (string, bool) {
	v, found := "", false
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v, found = val, true
		}
	}
	return v, found
}

// ttyNeedsTerminal is Docker's refusal of -it without a terminal.
const ttyNeedsTerminal = "the input device is not a TTY: -t with -i needs a terminal on stdin (drop -t to pipe input, as in: echo data | berth exec -i NAME cat)"

// console is the user's side of a container's terminal while a process
// runs on it: output copied to the CLI's stdout, input (with -i) from its
// stdin with the user's terminal in raw mode, so that Ctrl-C, Ctrl-D and
// every other key reach the container's terminal as they would a local
// one, and the window size kept the same as the user's.
type console struct {
	c      *CLI
	master *os.File
	in     *os.File // the user's terminal, in raw mode while attached
	raw    *term.State

	outDone  chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// attach starts copying between the CLI's streams and master, the
// container's terminal; input says whether stdin is forwarded (-i).
func (c *CLI) attach(master *os.File, input bool) (*console, error) {
	k := &console{c: c, master: master, outDone: make(chan struct{}), stop: make(chan struct{})}
	in := fileOf(c.Stdin)
	size := in
	if !isTerminal(size) {
		size = fileOf(c.Stdout)
	}
	k.resize(size)
	if input && isTerminal(in) {
		raw, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return nil, fmt.Errorf("putting the terminal in raw mode: %w", err)
		}
		k.in, k.raw = in, raw
	}
	go func() {
		defer close(k.outDone)
		// Reading the master ends with EIO once every process holding the
		// container's end of the terminal is gone.
		_, _ = io.Copy(c.Stdout, master)
	}()
	if input {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			k.copyInput()
		}()
	}
	if isTerminal(size) {
		winch, unsubscribe := c.resizes()
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			defer unsubscribe()
			for {
				select {
				case <-winch:
					k.resize(size)
				case <-k.stop:
					return
				}
			}
		}()
	}
	return k, nil
}

// resize gives the container's terminal the size of from, a terminal.
func (k *console) resize(from *os.File) {
	if !isTerminal(from) {
		return
	}
	ws, err := unix.IoctlGetWinsize(int(from.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	_ = unix.IoctlSetWinsize(int(k.master.Fd()), unix.TIOCSWINSZ, ws)
}

// copyInput forwards the user's input until the process ends. A terminal
// or pipe is polled rather than read blocking: after the process ends
// nothing may go on reading the user's terminal (in an agent, the
// client's), or the next key typed to the shell would be lost.
func (k *console) copyInput() {
	f := fileOf(k.c.Stdin)
	if f == nil {
		_, _ = io.Copy(k.master, stopReader{k.c.Stdin, k.stop})
		return
	}
	buf := make([]byte, 32*1024)
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	for {
		select {
		case <-k.stop:
			return
		default:
		}
		n, err := unix.Poll(fds, 100)
		if errors.Is(err, unix.EINTR) || n == 0 {
			continue
		}
		if err != nil {
			return
		}
		n, err = f.Read(buf)
		if n > 0 {
			if _, werr := k.master.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// The end of piped input: a terminal cannot be half closed, so
			// the process goes on until it ends by itself.
			return
		}
	}
}

// stopReader reads r until stop is closed.
type stopReader struct {
	r    io.Reader
	stop <-chan struct{}
}

func (s stopReader) Read(p []byte) (int, error) {
	select {
	case <-s.stop:
		return 0, io.EOF
	default:
		return s.r.Read(p)
	}
}

// detach ends the attachment once the process ended: it lets the output
// drain (briefly, if a process left behind still holds the terminal),
// stops the input, and gives the user's terminal back as it was.
func (k *console) detach() {
	select {
	case <-k.outDone:
	case <-time.After(2 * time.Second):
	}
	k.stopOnce.Do(func() { close(k.stop) })
	k.wg.Wait()
	k.master.Close()
	if k.raw != nil {
		_ = term.Restore(int(k.in.Fd()), k.raw)
	}
}

// consoleSink takes the master of a new terminal from a driver callback
// (which must not block) and attaches to it.
type consoleSink struct {
	c     *CLI
	input bool

	mu  sync.Mutex
	k   *console
	err error
}

func (s *consoleSink) take(master *os.File) {
	k, err := s.c.attach(master, s.input)
	if err != nil {
		master.Close()
	}
	s.mu.Lock()
	s.k, s.err = k, err
	s.mu.Unlock()
}

// done detaches, if attached, and says whether attaching failed.
func (s *consoleSink) done() error {
	s.mu.Lock()
	k, err := s.k, s.err
	s.k = nil
	s.mu.Unlock()
	if k != nil {
		k.detach()
	}
	return err
}

// interruptCode is the exit code of a command that a signal ended, as a
// shell reports it.
func interruptCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 130
}
