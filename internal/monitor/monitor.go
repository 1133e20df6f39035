// Package monitor is what keeps one container's exit status and output
// when no berth process is around: a small process per container whose
// child is the container's init. It writes the init's stdout and stderr to
// the container's log (internal/logfile) and, once the init exits, its exit
// status to exit.json. The agent can be killed, upgraded or restarted
// meanwhile: the monitor does not depend on it, and a new agent reads what
// it wrote.
//
// The berth binary starts a container (libcontainer needs the whole of
// berth), then replaces itself with the berth-monitor binary by execve: the
// pid, the init child and the pipes stay, the memory of berth goes. This
// package is that binary's body and the record format the driver reads; it
// uses the standard library only, since every package it imports costs
// memory in every container's monitor.
package monitor

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
	"github.com/seed-e88ffcd2/berth/internal/logfile"
)

// Files in a container's directory.
const (
	RecordFile = "monitor.json"
	ExitFile   = "exit.json"
	LogFile    = "container.log"
)

// The descriptors the monitor is started with.
const (
	FdStdout = 3 // read end of the init's stdout (absent with a terminal)
	FdStderr = 4 // read end of the init's stderr (absent with a terminal)
	FdStatus = 5 // where the monitor says it runs, then closes
)

// Options are the monitor's command line.
type Options struct {
	Dir         string // the container's directory
	InitPid     int    // the container's init, a child of the monitor
	LogMaxSize  int64  // rotate the log past this size; 0 never
	LogMaxFiles int    // log files kept, the current one included
	TTY         bool   // the init has a terminal: no output to log
}

// Args is the command line for o, without the program name.
func (o Options) Args() []string {
	args := []string{
		"-dir", o.Dir,
		"-init-pid", strconv.Itoa(o.InitPid),
		"-log-max-size", strconv.FormatInt(o.LogMaxSize, 10),
		"-log-max-files", strconv.Itoa(o.LogMaxFiles),
	}
	if o.TTY {
		args = append(args, "-tty")
	}
	return args
}

// Parse reads a command line Args wrote.
func Parse(args []string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("berth-monitor", flag.ContinueOnError)
	fs.StringVar(&o.Dir, "dir", "", "container directory")
	fs.IntVar(&o.InitPid, "init-pid", 0, "pid of the container's init")
	fs.Int64Var(&o.LogMaxSize, "log-max-size", 10<<20, "rotate the log past this many bytes")
	fs.IntVar(&o.LogMaxFiles, "log-max-files", 3, "log files kept")
	fs.BoolVar(&o.TTY, "tty", false, "the init has a terminal")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.Dir == "" || o.InitPid <= 0 {
		return o, errors.New("berth-monitor is started by berth: -dir and -init-pid are required")
	}
	return o, nil
}

// Record says which process monitors a container; the agent checks
// StartTicks before trusting Pid, since pids are reused.
type Record struct {
	Pid        int       `json:"pid"`
	StartTicks uint64    `json:"start_ticks"`
	InitPid    int       `json:"init_pid"`
	Started    time.Time `json:"started"`
}

// Exit is how a container's init ended.
type Exit struct {
	Code     int       `json:"code"`
	Signal   string    `json:"signal,omitempty"`
	InitPid  int       `json:"init_pid"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

func (e Exit) String() string {
	s := fmt.Sprintf("container exited with status %d", e.Code)
	if e.Signal != "" {
		s += " (" + e.Signal + ")"
	}
	return s
}

// ReadRecord reads the monitor record in dir.
func ReadRecord(dir string) (Record, error) {
	var r Record
	return r, readJSON(filepath.Join(dir, RecordFile), &r)
}

// ReadExit reads the exit record in dir.
func ReadExit(dir string) (Exit, error) {
	var e Exit
	return e, readJSON(filepath.Join(dir, ExitFile), &e)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

// StartTicks is when process pid started, in clock ticks since boot: with
// the pid, it names one process for good.
func StartTicks(pid int) (uint64, error) {
	_, ticks, err := stat(pid)
	return ticks, err
}

// stat reads the state (R, S, Z …) and start time of process pid.
func stat(pid int) (state byte, ticks uint64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. state is field 3 of stat(5),
	// starttime field 22.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ticks, err = strconv.ParseUint(fields[19], 10, 64)
	return fields[0][0], ticks, err
}

// Alive reports whether the monitor that r describes still runs. A
// monitor that exited and waits to be reaped (a zombie: its parent died,
// and the host's init reaps at its own pace) is not alive: it writes
// nothing more.
func (r Record) Alive() bool {
	state, ticks, err := stat(r.Pid)
	return err == nil && ticks == r.StartTicks && state != 'Z' && state != 'X'
}

// Run is the monitor: it records itself, says so on status, logs the
// init's output, and once the init exits writes its exit status. stdout
// and stderr are nil with a terminal.
func Run(o Options, stdout, stderr, status *os.File) error {
	// The monitor lives in its own session; a hangup or an interrupt meant
	// for whoever started it must not end it.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	// Until it runs, a failure leaves nobody to record the init's end or
	// drain its output: the init goes too, rather than run unwatched.
	fail := func(err error) error {
		_ = syscall.Kill(o.InitPid, syscall.SIGKILL)
		return report(status, err)
	}
	self := os.Getpid()
	ticks, err := StartTicks(self)
	if err != nil {
		return fail(err)
	}
	started := time.Now().UTC()
	rec := Record{Pid: self, StartTicks: ticks, InitPid: o.InitPid, Started: started}
	if err := writeJSON(filepath.Join(o.Dir, RecordFile), rec); err != nil {
		return fail(err)
	}

	var wg sync.WaitGroup
	if !o.TTY {
		w, err := logfile.Create(filepath.Join(o.Dir, LogFile), o.LogMaxSize, o.LogMaxFiles)
		if err != nil {
			return fail(err)
		}
		defer w.Close()
		var mu sync.Mutex
		for _, s := range []struct {
			name string
			f    *os.File
		}{{"stdout", stdout}, {"stderr", stderr}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				copyLines(s.f, &logfile.Lines{Stream: s.name, W: w}, &mu)
			}()
		}
	}
	if status != nil {
		fmt.Fprintf(status, "{\"pid\":%d}\n", self)
		status.Close()
	}

	ws := waitInit(o.InitPid)
	finished := time.Now().UTC()
	// The init's end kills every process of its pid namespace, which
	// closes the pipes; a process that escaped it (a child of berth exec)
	// may still hold them, so the wait is bounded.
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
	}
	e := Exit{Code: ws.ExitStatus(), InitPid: o.InitPid, Started: started, Finished: finished}
	if ws.Signaled() {
		// The shell's convention, which Docker reports too.
		e.Code = 128 + int(ws.Signal())
		e.Signal = signalName(ws.Signal())
	}
	return writeJSON(filepath.Join(o.Dir, ExitFile), e)
}

// report tells whoever waits on status that the monitor failed.
func report(status *os.File, err error) error {
	if status != nil {
		data, _ := json.Marshal(map[string]string{"error": err.Error()})
		status.Write(append(data, '\n'))
		status.Close()
	}
	return err
}

// copyLines logs one stream until it ends.
func copyLines(r io.Reader, l *logfile.Lines, mu *sync.Mutex) {
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			mu.Lock()
			_ = l.Feed(buf[:n], time.Now())
			mu.Unlock()
		}
		if err != nil {
			mu.Lock()
			_ = l.Flush(time.Now())
			mu.Unlock()
			return
		}
	}
}

// waitInit reaps children until the init is among them. The monitor is a
// child subreaper, so orphans of the init's start may land here too.
func waitInit(pid int) syscall.WaitStatus {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			// No child left: the init was reaped by someone else, which
			// cannot happen to a child; report it as killed.
			return syscall.WaitStatus(syscall.SIGKILL)
		}
		if got == pid {
			return ws
		}
	}
}

func signalName(s syscall.Signal) string {
	if n, ok := signalNames[s]; ok {
		return n
	}
	return "signal " + strconv.Itoa(int(s))
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGILL: "SIGILL", syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT",
	syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL",
	syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM",
}
