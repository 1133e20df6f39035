package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/agent/api"
)

func init() {
	// With BERTH_TEST_MAIN set, the test binary is berth itself, main's
	// routing included: `berth agent`, and commands that go through it.
	// (This file sorts after main.go: main's init has run.)
	if args := os.Getenv("BERTH_TEST_MAIN"); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			panic(err)
		}
		os.Exit(runMain(context.Background(), argv))
	}
}

// berthMain is the berth command as a user runs it: a process of its own
// (the test binary), in dir, routed through the agent when one answers.
func berthMain(dir string, env []string, args ...string) *exec.Cmd {
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0])
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), env...), "BERTH_TEST_MAIN="+string(b))
	return cmd
}

// run runs berth with -dir set to the host's configuration and returns
// its exit code and output (stdout, then stderr).
func (h *host) run(env []string, args ...string) (int, string) {
	h.t.Helper()
	full := append([]string{args[0], "-dir", h.dir}, args[1:]...)
	return runCmd(h.t, berthMain("/", env, full...))
}

func runCmd(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("berth: %v", err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String() + stderr.String()
}

// agentProc is a running `berth agent`.
type agentProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    string // its log file
	socket string
	exited chan error
}

// startAgent starts `berth agent` on the test's host and waits until it
// answers; it is stopped at cleanup if the test did not stop it.
func startAgent(t *testing.T) *agentProc {
	t.Helper()
	a := &agentProc{t: t, socket: os.Getenv("BERTH_SOCKET"), exited: make(chan error, 1)}
	a.log = filepath.Join(t.TempDir(), "agent.log")
	logFile, err := os.Create(a.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	a.cmd = berthMain("/", nil, "agent", "-log-format", "json")
	a.cmd.Stdout, a.cmd.Stderr = logFile, logFile
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.exited <- a.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-a.exited:
			a.exited <- nil
			return
		default:
		}
		a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(45 * time.Second):
			t.Errorf("cleanup: the agent did not stop on SIGTERM\n%s", a.logs())
			a.cmd.Process.Kill()
			<-a.exited
		}
		a.exited <- nil
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := api.Dial(a.socket)
		if err == nil {
			c.Close()
			return a
		}
		select {
		case err := <-a.exited:
			a.exited <- err
			t.Fatalf("the agent exited at start: %v\n%s", err, a.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent does not answer on %s: %v\n%s", a.socket, err, a.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (a *agentProc) logs() string {
	b, _ := os.ReadFile(a.log)
	return string(b)
}

// stop sends sig and returns the agent's exit code.
func (a *agentProc) stop(sig syscall.Signal) int {
	a.t.Helper()
	a.cmd.Process.Signal(sig)
	select {
	case err := <-a.exited:
		a.exited <- err
	case <-time.After(45 * time.Second):
		a.t.Fatalf("the agent did not stop on %v\n%s", sig, a.logs())
	}
	return a.cmd.ProcessState.ExitCode()
}

const sleepersConfig = `
image "bb" {
  rootfs = "./rootfs"
}

# busybox sleep as PID 1 ignores SIGTERM: each stop takes stop_timeout,
# a window in which to interrupt a destroy.
container "sleeper" {
  count        = 3
  image        = image.bb.ref
  command      = ["sleep", "3600"]
  stop_timeout = "2s"
}
`

// TestAgent runs berth through `berth agent`: the same output as without
// it, one process holding the store, the socket 0600, Ctrl-C reaching the
// session, and containers outliving the agent.
func TestAgent(t *testing.T) {
	h := newHost(t, "e2eagent")
	socket := filepath.Join(os.Getenv("BERTH_RUN_DIR"), "berth.sock")
	t.Setenv("BERTH_SOCKET", socket)
	h.write("main.hcl", sleepersConfig)

	// Without an agent, the command runs in-process.
	code, local := h.run(nil, "plan")
	if code != 0 || !strings.Contains(local, "Plan: 4 to add") {
		t.Fatalf("plan without an agent: exit %d\n%s", code, local)
	}

	a := startAgent(t)
	st, err := os.Stat(socket)
	if err != nil || st.Mode().Type() != os.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket %s: %v %v, want a socket of mode 0600", socket, err, st.Mode())
	}
	c, err := api.Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	var v api.Version
	if err := c.Do(context.Background(), "GET", "/v1/version", nil, &v); err != nil || v.PID != a.cmd.Process.Pid {
		t.Errorf("version: %v %+v, want the agent's pid %d", err, v, a.cmd.Process.Pid)
	}
	c.Close()

	// Through the agent: byte for byte what the CLI printed itself.
	if code, out := h.run(nil, "plan"); code != 0 || out != local {
		t.Errorf("plan through the agent: exit %d\n%s\nwithout the agent:\n%s", code, out, local)
	}
	// Paths are the client's: a relative -dir and -out.
	parent, name := filepath.Split(h.dir)
	if code, out := runCmd(t, berthMain(parent, nil, "plan", "-dir", name, "-out", "saved.plan")); code != 0 || !strings.Contains(out, "Saved the plan to saved.plan") {
		t.Errorf("plan -out with a relative -dir: exit %d\n%s", code, out)
	}
	if st, err := os.Stat(filepath.Join(parent, "saved.plan")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the saved plan is not in the client's directory: %v", err)
	}
	if code, out := h.run(nil, "apply", "-auto-approve"); code != 0 || !strings.Contains(out, "Apply complete! 4 added, 0 changed, 0 replaced, 0 destroyed.") {
		t.Fatalf("apply through the agent: exit %d\n%s", code, out)
	}
	if code, out := h.run(nil, "plan", "-detailed-exitcode"); code != 0 || !strings.Contains(out, "No changes.") {
		t.Errorf("plan after the apply: exit %d, want 0\n%s", code, out)
	}
	if code, out := h.run(nil, "state", "list"); code != 0 || strings.Count(out, "container.sleeper[") != 3 {
		t.Errorf("state list: exit %d\n%s", code, out)
	}

	// One process holds the store: a second agent is refused, and so is a
	// command that does not reach the agent.
	code, out := runCmd(t, berthMain("/", nil, "agent"))
	if want := fmt.Sprintf("an agent (pid %d) already runs on this host", a.cmd.Process.Pid); code != 1 || !strings.Contains(out, want) {
		t.Errorf("second agent: exit %d, want %q\n%s", code, want, out)
	}
	code, out = h.run([]string{"BERTH_SOCKET=/nonexistent"}, "plan")
	if want := fmt.Sprintf("the berth agent (pid %d, socket %s) holds this host's state", a.cmd.Process.Pid, socket); code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "/nonexistent") {
		t.Errorf("plan not reaching the agent: exit %d, want %q\n%s", code, want, out)
	}

	// SIGTERM: a clean exit, the socket gone, the containers running (a
	// plan without the agent finds nothing to do).
	if code := a.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("agent exit %d after SIGTERM\n%s", code, a.logs())
	}
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after the agent stopped: %v", err)
	}
	for _, want := range []string{`"msg":"agent started"`, `"msg":"session started"`, `"command":"apply"`, `"msg":"agent stopped; containers keep running"`} {
		if !strings.Contains(a.logs(), want) {
			t.Errorf("the agent's log lacks %s:\n%s", want, a.logs())
		}
	}
	if code, out := h.berth("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan without the agent after it stopped: exit %d, want 0 (containers running)\n%s", code, out)
	}

	// An agent killed leaves its socket: commands run in-process, and the
	// next agent replaces it.
	a = startAgent(t)
	if code := a.stop(syscall.SIGKILL); code != -1 {
		t.Errorf("killed agent: exit %d", code)
	}
	if _, err := os.Stat(socket); err != nil {
		t.Fatalf("a killed agent's socket: %v", err)
	}
	if code, out := h.run(nil, "plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan with a stale socket: exit %d\n%s", code, out)
	}
	a = startAgent(t)

	// Ctrl-C during a destroy through the agent: the change in flight
	// finishes, nothing new starts, the state says what was done.
	interruptFirstDelete(t, berthMain("/", nil, "destroy", "-dir", h.dir, "-auto-approve", "-parallelism", "1"))
	if code, out := h.run(nil, "destroy", "-auto-approve"); code != 0 || !strings.Contains(out, "Destroy complete! 3 destroyed.") {
		t.Errorf("destroy through the agent: exit %d\n%s", code, out)
	}
	if code := a.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("agent exit %d after SIGTERM\n%s", code, a.logs())
	}
}
