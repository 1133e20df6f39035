package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
	"github.com/seed-e88ffcd2/berth/internal/monitor"
	"golang.org/x/sys/unix"
)

// Starting a container, and starting it again after its init exited, goes
// through a helper: berth re-executes itself as "__berth-start DIR", the
// helper creates the libcontainer container from DIR/start.json and runs
// its init (which becomes the helper's child), then replaces itself with
// berth-monitor (execve), which keeps the pid, the child and the pipes.
// The monitor records the exit status and logs the output whoever runs or
// dies meanwhile; see internal/monitor.

const startArg = "__berth-start"

// The helper's descriptors beyond the monitor's (monitor.Fd*).
const (
	fdStdin   = 6 // the init's stdin, when the caller gives one
	fdConsole = 7 // a unix socket the console's master is sent on
)

// startSpec is DIR/start.json: everything needed to start the init again.
type startSpec struct {
	Root        string          `json:"root"` // libcontainer's state root
	ID          string          `json:"id"`
	Config      *configs.Config `json:"config"`
	Process     processSpec     `json:"process"`
	Monitor     string          `json:"monitor"`
	LogMaxSize  int64           `json:"log_max_size"`
	LogMaxFiles int             `json:"log_max_files"`
}

// processSpec is the init's libcontainer.Process, minus its streams.
type processSpec struct {
	Args             []string `json:"args"`
	Env              []string `json:"env"`
	UID              int      `json:"uid"`
	GID              int      `json:"gid"`
	AdditionalGroups []int    `json:"additional_groups,omitempty"`
	Cwd              string   `json:"cwd"`
}

func processSpecOf(p *libcontainer.Process) processSpec {
	return processSpec{Args: p.Args, Env: p.Env, UID: p.UID, GID: p.GID, AdditionalGroups: p.AdditionalGroups, Cwd: p.Cwd}
}

func (p processSpec) process() *libcontainer.Process {
	return &libcontainer.Process{
		Args: p.Args, Env: p.Env, UID: p.UID, GID: p.GID, AdditionalGroups: p.AdditionalGroups, Cwd: p.Cwd, Init: true,
	}
}

const startFile = "start.json"

func writeStartSpec(dir string, s *startSpec) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, startFile), data, 0o600)
}

func readStartSpec(dir string) (*startSpec, error) {
	data, err := os.ReadFile(filepath.Join(dir, startFile))
	if err != nil {
		return nil, err
	}
	var s startSpec
	return &s, json.Unmarshal(data, &s)
}

// Interactive is how a one-off container's init talks to a person: Stdin
// is given to it as it is (the caller's own terminal or pipe), and with
// TTY the init gets a new terminal whose master end Console receives.
type Interactive struct {
	Stdin   *os.File
	TTY     bool
	Console func(master *os.File)
}

// spawn starts the init of the container in dir under a new monitor and
// returns once the monitor runs. The libcontainer container must not exist.
func (d *Driver) spawn(ctx context.Context, dir string, in *Interactive) error {
	if d.cfg.Monitor == "" {
		return errors.New("berth-monitor not found: build it next to berth (make builds bin/berth-monitor) or set BERTH_MONITOR")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer statusR.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		statusW.Close()
		return err
	}
	defer devnull.Close()
	errLog, err := os.OpenFile(filepath.Join(dir, "monitor.err"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		statusW.Close()
		return err
	}
	defer errLog.Close()

	cmd := exec.Command(exe, startArg, dir)
	cmd.Env = []string{"_BERTH_START=1", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stderr = errLog
	// Placeholders at 3 and 4, which the helper replaces by the pipes.
	cmd.ExtraFiles = []*os.File{devnull, devnull, statusW}
	var console, theirs *os.File
	if in != nil {
		stdin := devnull
		if in.Stdin != nil {
			stdin = in.Stdin
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, stdin)
		cmd.Env = append(cmd.Env, "_BERTH_START_STDIN=1")
		if in.TTY {
			cmd.Env = append(cmd.Env, "_BERTH_START_TTY=1")
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				statusW.Close()
				return err
			}
			console = os.NewFile(uintptr(fds[0]), "console")
			defer console.Close()
			theirs = os.NewFile(uintptr(fds[1]), "console-helper")
			cmd.ExtraFiles = append(cmd.ExtraFiles, theirs)
		}
	}
	// Its own session: the monitor must outlive the caller and its
	// terminal's signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	// Only the helper holds these now: when it exits, reads see the end.
	statusW.Close()
	if theirs != nil {
		theirs.Close()
	}
	if err != nil {
		return fmt.Errorf("start helper: %w", err)
	}
	// The monitor is this process's child until this process ends: reap it.
	go func() { _ = cmd.Wait() }()

	type result struct {
		Pid   int    `json:"pid"`
		Error string `json:"error"`
	}
	got := make(chan result, 1)
	go func() {
		var r result
		line, err := bufio.NewReader(statusR).ReadBytes('\n')
		if err != nil {
			r.Error = "the container's monitor exited before it ran"
			if data, _ := os.ReadFile(errLog.Name()); len(data) > 0 {
				r.Error += ": " + lastLine(data)
			}
		} else if err := json.Unmarshal(line, &r); err != nil {
			r.Error = fmt.Sprintf("monitor said %q", line)
		}
		got <- r
	}()
	if console != nil {
		master, err := recvFile(console)
		if err != nil {
			// The helper failed before it had a terminal to send; its
			// status says why.
			select {
			case r := <-got:
				if r.Error != "" {
					return errors.New(r.Error)
				}
			case <-time.After(5 * time.Second):
			}
			_ = cmd.Process.Kill()
			return fmt.Errorf("receive the terminal: %w", err)
		}
		in.Console(master)
	}
	select {
	case r := <-got:
		if r.Error != "" {
			return errors.New(r.Error)
		}
		return nil
	case <-ctx.Done():
		// The helper goes on; the record tells a later look what became of
		// it.
		return ctx.Err()
	}
}

func lastLine(data []byte) string {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return lines[len(lines)-1]
}

// startMain is the helper: it never returns.
func startMain(dir string) {
	status := os.NewFile(monitor.FdStatus, "status")
	fail := func(err error) {
		data, _ := json.Marshal(map[string]string{"error": err.Error()})
		status.Write(append(data, '\n'))
		os.Exit(1)
	}
	spec, err := readStartSpec(dir)
	if err != nil {
		fail(fmt.Errorf("read start spec: %w", err))
	}
	// Children whose parent dies land here rather than on the host's init.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fail(err)
	}
	c, err := libcontainer.Create(spec.Root, spec.ID, spec.Config)
	if err != nil {
		fail(fmt.Errorf("libcontainer: %w", err))
	}
	proc := spec.Process.process()
	// The descriptors beyond the monitor's are there when the environment
	// says so: the runtime may have opened its own at those numbers.
	interactive := os.Getenv("_BERTH_START_STDIN") == "1"
	tty := os.Getenv("_BERTH_START_TTY") == "1"
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		fail(err)
	}
	if interactive {
		stdin = os.NewFile(fdStdin, "stdin")
	}
	proc.Stdin = stdin
	var outR, errR, outW, errW, consoleParent, consoleChild *os.File
	if tty {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fail(err)
		}
		consoleParent, consoleChild = os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child")
		proc.ConsoleSocket = consoleChild
	} else {
		if outR, outW, err = os.Pipe(); err != nil {
			fail(err)
		}
		if errR, errW, err = os.Pipe(); err != nil {
			fail(err)
		}
		proc.Stdout, proc.Stderr = outW, errW
	}
	if err := c.Run(proc); err != nil {
		_ = c.Destroy()
		fail(fmt.Errorf("start: %w", err))
	}
	pid, err := proc.Pid()
	if err != nil {
		_ = c.Signal(unix.SIGKILL)
		fail(err)
	}
	if tty {
		master, err := recvFile(consoleParent)
		if err == nil {
			err = sendFile(os.NewFile(fdConsole, "console"), master)
		}
		if err != nil {
			_ = c.Signal(unix.SIGKILL)
			fail(fmt.Errorf("pass the terminal on: %w", err))
		}
		master.Close()
		consoleChild.Close()
		consoleParent.Close()
	} else {
		outW.Close()
		errW.Close()
		// The pipes' read ends where the monitor expects them, inheritable.
		if err := unix.Dup3(int(outR.Fd()), monitor.FdStdout, 0); err != nil {
			_ = c.Signal(unix.SIGKILL)
			fail(err)
		}
		if err := unix.Dup3(int(errR.Fd()), monitor.FdStderr, 0); err != nil {
			_ = c.Signal(unix.SIGKILL)
			fail(err)
		}
	}
	// libcontainer marked every descriptor close-on-exec before starting
	// the init (so none leaks into the container); the status pipe goes on
	// to the monitor.
	if _, err := unix.FcntlInt(monitor.FdStatus, unix.F_SETFD, 0); err != nil {
		_ = c.Signal(unix.SIGKILL)
		fail(err)
	}
	if interactive {
		unix.Close(fdStdin)
	}
	if tty {
		unix.Close(fdConsole)
	}
	o := monitor.Options{Dir: dir, InitPid: pid, LogMaxSize: spec.LogMaxSize, LogMaxFiles: spec.LogMaxFiles, TTY: tty}
	err = unix.Exec(spec.Monitor, append([]string{"berth-monitor"}, o.Args()...), []string{"GOMAXPROCS=1"})
	_ = c.Signal(unix.SIGKILL)
	fail(fmt.Errorf("exec %s: %w", spec.Monitor, err))
}

func sendFile(sock, f *os.File) error {
	return unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(int(f.Fd())), nil, 0)
}

func recvFile(sock *os.File) (*os.File, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	buf := make([]byte, 1)
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err == nil && len(fds) == 1 {
			return os.NewFile(uintptr(fds[0]), "console-master"), nil
		}
	}
	return nil, errors.New("no descriptor received")
}

// monitorGone waits up to timeout for the monitor of the container in dir
// to exit, then kills it, so that it never writes into a directory that a
// new container of the same name now owns.
func monitorGone(dir string, timeout time.Duration) {
	rec, err := monitor.ReadRecord(dir)
	if err != nil {
		return
	}
	deadline := time.Now().Add(timeout)
	for rec.Alive() {
		if time.Now().After(deadline) {
			_ = unix.Kill(rec.Pid, unix.SIGKILL)
			deadline = time.Now().Add(time.Hour)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lastExit reads how the init ended, waiting a little for a monitor that
// is still draining the output to write it.
func lastExit(dir string) (monitor.Exit, bool) {
	for i := 0; ; i++ {
		e, err := monitor.ReadExit(dir)
		if err == nil {
			return e, true
		}
		rec, rerr := monitor.ReadRecord(dir)
		if !errors.Is(err, fs.ErrNotExist) || rerr != nil || !rec.Alive() || i >= 200 {
			return monitor.Exit{}, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
