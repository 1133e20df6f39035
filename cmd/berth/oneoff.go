package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seed-e88ffcd2/berth/agent"
	"github.com/seed-e88ffcd2/berth/internal/logfile"
	"github.com/seed-e88ffcd2/berth/resource"
)

// runOneOff is berth run: a one-off container that belongs to no project,
// as docker run makes one.
//
// In the foreground (no -d) berth stays until the container exits and
// exits with its code. With -t the container gets a terminal, copied to
// and from the user's as berth exec -t does: Ctrl-C and Ctrl-D are keys
// the container's terminal turns into SIGINT and end-of-file. Without -t
// the container's output is followed from its log, and a SIGINT or
// SIGTERM that reaches berth (Ctrl-C) is passed on to the container's
// init; SIGKILL follows after the stop timeout, or at once on a second
// one. --rm deletes the container once it exited, Ctrl-C or not.
func (c *CLI) runOneOff(ctx context.Context, args []string) int {
	fs := c.dockerFlags("run", "[flags] IMAGE [COMMAND] [ARG...]")
	rm := fs.Bool("rm", false, "delete the container when it exits")
	detach := fs.BoolP("detach", "d", false, "start the container, print its name and return")
	interactive := fs.BoolP("interactive", "i", false, "pass stdin to the container")
	tty := fs.BoolP("tty", "t", false, "give the container a terminal (with -i: yours, in raw mode)")
	name := fs.String("name", "", "the container's name (default: a free one, such as brave-heron)")
	volumes := fs.StringArrayP("volume", "v", nil, "mount SRC:DST[:ro]; SRC is a host path (absolute, or relative such as ./src) or a volume's name (repeatable)")
	ports := fs.StringArrayP("publish", "p", nil, "publish a port: [IP:]HOST:CONTAINER[/udp] (repeatable; needs --network)")
	networks := fs.StringArray("network", nil, "attach to a network, by its name on the host (repeatable)")
	fs.StringArrayVar(networks, "net", nil, "the same as --network")
	_ = fs.MarkHidden("net")
	env := fs.StringArrayP("env", "e", nil, "set an environment variable (repeatable); -e KEY passes KEY from here")
	workdir := fs.StringP("workdir", "w", "", "working directory in the container")
	user := fs.StringP("user", "u", "", "run as USER[:GROUP], by name or number")
	entrypoint := fs.String("entrypoint", "", "run this program instead of the image's entrypoint")
	memory := fs.StringP("memory", "m", "", "memory limit, such as 256M")
	cpus := fs.Float64("cpus", 0, "CPU limit, may be fractional")
	hostname := fs.String("hostname", "", "the container's hostname (default: its name)")
	labels := fs.StringArrayP("label", "l", nil, "set a label KEY=value (repeatable)")
	readOnly := fs.Bool("read-only", false, "mount the root filesystem read-only")
	stopSignal := fs.String("stop-signal", "", "the signal that stops the container (default SIGTERM)")
	stopTimeout := fs.Int("stop-timeout", 10, "seconds from the stop signal to SIGKILL")
	pull := fs.String("pull", agent.PullMissing, "pull the image from its registry: missing (when the host has none of that name), always or never")
	if code, ok := c.parseDocker(fs, args); !ok {
		return code
	}
	pos := fs.Args()
	fail := func(format string, args ...any) int {
		c.errorf(format, args...)
		return exitBerth
	}
	switch {
	case len(pos) == 0:
		return fail("run needs an image: berth run [flags] IMAGE [COMMAND] [ARG...]")
	case *detach && (*interactive || *tty):
		return fail("-d cannot go with -i or -t: once berth run -d returns, nothing holds the container's terminal or input. Give the container a command that keeps running (such as sleep infinity) and open a shell in it with berth exec -it NAME sh")
	case *tty && *interactive && !isTerminal(fileOf(c.Stdin)):
		return fail("%s", ttyNeedsTerminal)
	case *rm && *detach && c.OpenHost == nil:
		// In-process, no agent runs (runMain would have gone to it), and
		// nothing would watch the container to delete it when it exits.
		return fail("--rm with -d needs the agent, which deletes the container when it exits: start berth agent, or leave out --rm and delete the container yourself (berth rm NAME)")
	case *pull != agent.PullMissing && *pull != agent.PullAlways && *pull != agent.PullNever:
		return fail("--pull %q: write --pull missing, always or never", *pull)
	case *stopTimeout < 0:
		return fail("--stop-timeout %d: give a number of seconds, 0 or more", *stopTimeout)
	}

	o := agent.OneOff{
		Name: *name, WorkingDir: *workdir, User: *user, Hostname: *hostname, ReadOnly: *readOnly,
		Memory: *memory, CPUs: *cpus, StopSignal: *stopSignal, StopTimeout: fmt.Sprintf("%ds", *stopTimeout),
		AutoRemove: *rm, Command: pos[1:],
	}
	if len(o.Command) == 0 {
		o.Command = nil // the image's
	}
	if fs.Changed("entrypoint") {
		// As docker run: the command follows the new entrypoint, and an
		// empty one runs the command itself.
		switch {
		case *entrypoint != "":
			o.Entrypoint = []string{*entrypoint}
		case len(o.Command) == 0:
			return fail("--entrypoint \"\" needs a command to run instead: berth run --entrypoint \"\" IMAGE COMMAND [ARG...]")
		default:
			o.Entrypoint, o.Command = o.Command[:1], o.Command[1:]
		}
	}
	envs, err := c.envList(*env)
	if err != nil {
		return fail("%v", err)
	}
	if *tty {
		envs = withTerm(envs)
	}
	if len(envs) > 0 {
		o.Env = map[string]string{}
		for _, kv := range envs {
			k, v, _ := strings.Cut(kv, "=")
			o.Env[k] = v
		}
	}
	if len(*labels) > 0 {
		o.Labels = map[string]string{}
		for _, l := range *labels {
			k, v, _ := strings.Cut(l, "=")
			if k == "" {
				return fail("--label %q: write --label KEY=value", l)
			}
			o.Labels[k] = v
		}
	}
	for _, v := range *volumes {
		m, err := c.parseVolume(v)
		if err != nil {
			return fail("%v", err)
		}
		o.Mounts = append(o.Mounts, m)
	}
	for _, p := range *ports {
		spec, err := parsePort(p)
		if err != nil {
			return fail("%v", err)
		}
		o.Ports = append(o.Ports, spec)
	}
	for _, n := range *networks {
		if n != "none" { // Docker's name for no network, which is the default here
			o.Networks = append(o.Networks, n)
		}
	}
	if len(o.Ports) > 0 && len(o.Networks) == 0 {
		return fail("-p needs a network to publish from: add --network NAME, naming a bridge network an applied configuration made (berth has no default network)")
	}

	host, release, err := c.openHost()
	if err != nil {
		return fail("%v", err)
	}
	defer release()
	o.Image, err = host.OneOffImage(ctx, pos[0], *pull, func() {
		fmt.Fprintf(c.Stderr, "Pulling %s from its registry...\n", pos[0])
	})
	if err != nil {
		return fail("%v", err)
	}

	var (
		in   *agent.Interactive
		sink *consoleSink
	)
	switch {
	case *tty:
		sink = &consoleSink{c: c, input: *interactive}
		in = &agent.Interactive{TTY: true, Console: sink.take}
	case *interactive:
		stdin, closeStdin, err := stdinFile(c.Stdin)
		if err != nil {
			return fail("%v", err)
		}
		defer closeStdin()
		in = &agent.Interactive{Stdin: stdin}
	}
	ctr, err := host.CreateOneOff(ctx, o, in)
	if sink != nil && err != nil {
		_ = sink.done()
	}
	if err != nil {
		return c.commandError(err)
	}
	if *detach {
		if *rm {
			// Only in the agent (refused above otherwise), which lives on.
			if err := ctr.RemoveOnExit(); err != nil {
				return fail("container %s: %v", ctr.Name, err)
			}
		}
		fmt.Fprintln(c.Stdout, ctr.Name)
		return 0
	}
	return c.waitOneOff(ctx, ctr, sink, *rm, time.Duration(*stopTimeout)*time.Second)
}

// waitOneOff stays with a foreground container until it exits, and
// returns its exit code.
func (c *CLI) waitOneOff(ctx context.Context, ctr *agent.OneOffContainer, sink *consoleSink, rm bool, stopTimeout time.Duration) int {
	if rm {
		defer func() {
			if err := ctr.Remove(ctx); err != nil {
				c.errorf("removing container %s: %v", ctr.Name, err)
			}
		}()
	}
	exited, err := ctr.Exited()
	if err != nil {
		c.errorf("container %s: %v", ctr.Name, err)
		exited = nil
	}
	var output chan struct{}
	if sink == nil && exited != nil {
		output = make(chan struct{})
		go func() {
			defer close(output)
			if err := c.copyLog(ctr.LogPath(), exited); err != nil {
				c.errorf("reading the output of container %s: %v", ctr.Name, err)
			}
		}()
	}

	sigs, unsubscribe := c.signals()
	defer unsubscribe()
	var (
		first os.Signal
		kill  <-chan time.Time
	)
	bg := context.WithoutCancel(ctx)
wait:
	for exited != nil {
		select {
		case <-exited:
			break wait
		case sig := <-sigs:
			if first == nil {
				first = sig
				s, _ := sig.(syscall.Signal)
				if s == 0 {
					s = syscall.SIGINT
				}
				_ = ctr.Signal(bg, s)
				if sink == nil {
					fmt.Fprintf(c.Stderr, "Stopping container %s: sent it %s; SIGKILL in %s, or at once on another interrupt.\n", ctr.Name, sigName(s), stopTimeout)
				}
				kill = time.After(stopTimeout)
				continue
			}
			_ = ctr.Signal(bg, syscall.SIGKILL)
		case <-kill:
			kill = nil
			_ = ctr.Signal(bg, syscall.SIGKILL)
		case <-ctx.Done():
			// The session's client went away for good: nobody is left to
			// see the container, which stops with it.
			_ = ctr.Signal(bg, syscall.SIGKILL)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
			}
			break wait
		}
	}
	if sink != nil {
		if err := sink.done(); err != nil {
			c.errorf("%v", err)
		}
	}
	if output != nil {
		<-output
	}
	code, err := ctr.ExitCode(bg)
	if err != nil {
		c.errorf("container %s: %v", ctr.Name, err)
		if first != nil {
			return interruptCode(first)
		}
		return exitBerth
	}
	return code
}

// copyLog writes a container's output, as its monitor logs it, to the
// CLI's stdout and stderr until exited is closed and the log is read to its
// end.
func (c *CLI) copyLog(path string, exited <-chan struct{}) error {
	r, err := logfile.Open(path, logfile.Options{Tail: -1, Follow: true, Stop: exited, Poll: 20 * time.Millisecond})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		e, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		w := c.Stdout
		if e.Stream == "stderr" {
			w = c.Stderr
		}
		_, _ = io.WriteString(w, e.Log)
	}
}

// Exit codes of a container's command that could not be started, as
// Docker's (and a shell's): not there, or there and not runnable.
const (
	exitNotFound      = 127
	exitNotExecutable = 126
)

// commandError prints err, which ended berth run or exec, and returns the
// exit code: 127 or 126 when the container's command could not be run
// (commandExitCode), else exitBerth.
func (c *CLI) commandError(err error) int {
	code, msg := commandExitCode(err)
	if code == 0 {
		c.errorf("%v", err)
		return exitBerth
	}
	c.errorf("%s", msg)
	return code
}

// commandExitCode tells whether err says the container's command could
// not be run, and how Docker exits then: 127 when it is not there (not
// found in $PATH, no such file), 126 when it is and cannot be run
// (permission denied, a directory, not an executable format), with that
// part of the message; 0 otherwise.
//
// libcontainer's init looks the command up with exec.LookPath, but
// passes the error to the runtime as text only (its initError), so no
// errors.Is reaches an exec.Error, fs.ErrNotExist or an errno: the
// errors.Is tests serve an error that keeps its chain, and the text of
// the exec.Error ("exec: \"NAME\": …") the one that does not.
func commandExitCode(err error) (int, string) {
	var ee *exec.Error
	if errors.As(err, &ee) {
		switch {
		case errors.Is(ee.Err, exec.ErrNotFound), errors.Is(ee.Err, fs.ErrNotExist), errors.Is(ee.Err, syscall.ENOENT):
			return exitNotFound, ee.Error()
		case errors.Is(ee.Err, fs.ErrPermission), errors.Is(ee.Err, syscall.EACCES), errors.Is(ee.Err, syscall.EISDIR), errors.Is(ee.Err, syscall.ENOEXEC):
			return exitNotExecutable, ee.Error()
		}
		return 0, ""
	}
	text := err.Error()
	i := strings.LastIndex(text, `exec: "`)
	if i < 0 {
		return 0, ""
	}
	msg := text[i:]
	for _, s := range []string{exec.ErrNotFound.Error(), syscall.ENOENT.Error()} {
		if strings.Contains(msg, s) {
			return exitNotFound, msg
		}
	}
	for _, s := range []string{syscall.EACCES.Error(), syscall.EISDIR.Error(), syscall.ENOEXEC.Error()} {
		if strings.Contains(msg, s) {
			return exitNotExecutable, msg
		}
	}
	return 0, ""
}

func sigName(s syscall.Signal) string {
	for name, n := range resource.Signals {
		if syscall.Signal(n) == s {
			return name
		}
	}
	return "signal " + strconv.Itoa(int(s))
}

// stdinFile is the CLI's stdin as a file for a container's init: the file
// itself, or a pipe fed from it when it is none (a test's buffer).
func stdinFile(r io.Reader) (*os.File, func(), error) {
	if f := fileOf(r); f != nil {
		return f, func() {}, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	go func() {
		_, _ = io.Copy(pw, r)
		pw.Close()
	}()
	return pr, func() { pr.Close() }, nil
}

// parseVolume reads -v SRC:DST[:ro|rw]. A SRC that looks like a path
// (absolute, or with a '/' or a leading '.') is a bind mount of that host
// path, taken relative to the command's working directory; any other SRC
// names a volume.
func (c *CLI) parseVolume(s string) (resource.MountSpec, error) {
	bad := fmt.Errorf("-v %q: write -v SRC:DST[:ro], SRC a host path (absolute, or relative such as ./src) or a volume's name, DST an absolute path in the container", s)
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !path.IsAbs(parts[1]) {
		return resource.MountSpec{}, bad
	}
	m := resource.MountSpec{Target: path.Clean(parts[1])}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return resource.MountSpec{}, bad
		}
	}
	src := parts[0]
	if !filepath.IsAbs(src) && !strings.HasPrefix(src, ".") && !strings.ContainsRune(src, '/') {
		m.Volume = src
		return m, nil
	}
	abs, err := c.abs(src)
	if err != nil {
		return resource.MountSpec{}, err
	}
	if _, err := os.Stat(abs); err != nil {
		return resource.MountSpec{}, fmt.Errorf("-v %q: %s does not exist on this host (berth does not create bind-mount sources)", s, abs)
	}
	m.Bind = abs
	return m, nil
}

// parsePort reads -p [IP:]HOST:CONTAINER[/tcp|/udp].
func parsePort(s string) (resource.PortSpec, error) {
	bad := fmt.Errorf("-p %q: write -p [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp], such as -p 8080:80 or -p 127.0.0.1:8080:80/udp", s)
	spec, proto, hasProto := strings.Cut(s, "/")
	p := resource.PortSpec{HostIP: "0.0.0.0", Protocol: "tcp"}
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return p, bad
		}
		p.Protocol = proto
	}
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 2:
	case 3:
		if ip := net.ParseIP(parts[0]); ip == nil || ip.To4() == nil {
			return p, bad
		}
		p.HostIP, parts = parts[0], parts[1:]
	default:
		return p, bad
	}
	for i, dst := range []*int{&p.Published, &p.Target} {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 1 || n > 65535 {
			return p, bad
		}
		*dst = n
	}
	return p, nil
}
