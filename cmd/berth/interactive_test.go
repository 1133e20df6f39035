package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// berth exec and berth run driven as a person drives them: the CLI a
// process of its own (berthMain) on a pseudo-terminal, typed at.

// ptyBerth is berth running on a pseudo-terminal.
type ptyBerth struct {
	t      *testing.T
	cmd    *exec.Cmd
	pty    *os.File // the terminal's master: what the person sees and types
	mu     sync.Mutex
	out    bytes.Buffer
	read   int // how much of out expect has consumed
	exited chan struct{}
}

// startPTY runs berth with args in dir on a new terminal of rows x cols.
func startPTY(t *testing.T, dir string, env []string, rows, cols uint16, args ...string) *ptyBerth {
	t.Helper()
	p := &ptyBerth{t: t, cmd: berthMain(dir, env, args...), exited: make(chan struct{})}
	f, err := pty.StartWithSize(p.cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	p.pty = f
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		f.Close()
	})
	return p
}

// expect waits until the terminal shows want after what earlier expects
// consumed, and consumes up to it.
func (p *ptyBerth) expect(want string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.mu.Lock()
		seen := p.out.String()
		p.mu.Unlock()
		if i := strings.Index(seen[p.read:], want); i >= 0 {
			p.read += i + len(want)
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal did not show %q; it shows:\n%q", want, seen[p.read:])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shows reports whether the terminal showed want since the last expect,
// waiting up to d.
func (p *ptyBerth) shows(want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		seen := p.out.String()
		p.mu.Unlock()
		if i := strings.Index(seen[p.read:], want); i >= 0 {
			p.read += i + len(want)
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (p *ptyBerth) send(s string) {
	p.t.Helper()
	if _, err := p.pty.WriteString(s); err != nil {
		p.t.Fatal(err)
	}
}

// wait returns berth's exit code.
func (p *ptyBerth) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.mu.Lock()
		defer p.mu.Unlock()
		p.t.Fatalf("berth did not exit; the terminal shows:\n%q", p.out.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// raw says whether the terminal is in raw mode: no line editing, no echo.
func (p *ptyBerth) raw() bool {
	p.t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.pty.Fd()), unix.TCGETS)
	if err != nil {
		p.t.Fatal(err)
	}
	return tio.Lflag&(unix.ICANON|unix.ECHO) == 0
}

// cooked fails the test unless the terminal is back in the mode berth
// found it in: line editing and echo on.
func (p *ptyBerth) cooked() {
	p.t.Helper()
	if p.raw() {
		p.t.Error("berth left the terminal in raw mode")
	}
}

// gone fails the test if the host still has a container named name.
func gone(t *testing.T, name string) {
	t.Helper()
	dir := filepath.Join(os.Getenv("BERTH_STATE_DIR"), "containers", name)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("container %s is still on the host (%s: %v)", name, dir, err)
	}
}

const busyboxImage = `
image "bb" {
  rootfs = "./rootfs"
}
`

// A running container of an applied configuration, for exec.
const boxConfig = busyboxImage + `
container "box" {
  image        = image.bb.ref
  command      = ["sleep", "3600"]
  stop_timeout = "1s"
}
`

// TestRunRemoveInteractive: berth run --rm -it IMAGE sh is a shell on the
// user's terminal; its exit code is berth's, and the container is gone
// afterwards.
func TestRunRemoveInteractive(t *testing.T) {
	h := newHost(t, "e2erunit")
	h.write("main.hcl", busyboxImage)
	h.must("apply", "-auto-approve")

	p := startPTY(t, h.dir, nil, 24, 80, "run", "--rm", "-it", "--name", "runit-sh", "e2erunit/bb", "sh")
	p.expect("# ")
	// Ctrl-C is a key for the container's terminal: it interrupts the
	// program in the foreground there, and the shell (and berth) go on.
	p.send("sleep 60; echo slept\r")
	p.expect("sleep 60")
	time.Sleep(200 * time.Millisecond)
	p.send("\x03")
	p.expect("# ")
	// The echo of the typed line shows "$((40+2))"; only the shell's
	// output shows 42.
	p.send("echo hi-$((40+2)); exit 3\r")
	p.expect("hi-42")
	if code := p.wait(); code != 3 {
		t.Errorf("berth run exited %d, want the shell's 3", code)
	}
	p.cooked()
	gone(t, "runit-sh")
}

// TestExecInteractive: berth exec -it NAME sh in a running container of an
// applied configuration: the shell sees the terminal's size, and its new
// size after a resize; Ctrl-D ends it with 0.
func TestExecInteractive(t *testing.T) {
	h := newHost(t, "e2eexecit")
	h.write("main.hcl", boxConfig)
	h.must("apply", "-auto-approve")
	execResize(t, h, nil)
}

// execResize runs exec -it in the "box" container of h's configuration.
func execResize(t *testing.T, h *host, env []string) {
	t.Helper()
	name := filepath.Base(h.dir) + "-box"
	p := startPTY(t, h.dir, env, 24, 80, "exec", "-it", name, "sh")
	p.expect("# ")
	if !p.raw() {
		t.Error("the user's terminal is not in raw mode while the shell runs")
	}
	p.send("stty size\r")
	p.expect("24 80")
	p.expect("# ")
	if err := pty.Setsize(p.pty, &pty.Winsize{Rows: 41, Cols: 123}); err != nil {
		t.Fatal(err)
	}
	// The kernel sends SIGWINCH to berth, the terminal's foreground
	// process, with the new size; berth passes the size on. Until it
	// did, stty shows the old one: ask again.
	resized := false
	for i := 0; i < 50 && !resized; i++ {
		p.send("stty size\r")
		resized = p.shows("41 123", 200*time.Millisecond)
	}
	if !resized {
		p.mu.Lock()
		t.Fatalf("stty size does not show the new size 41 123:\n%q", p.out.String())
		p.mu.Unlock()
	}
	p.expect("# ")
	p.send("\x04") // Ctrl-D
	if code := p.wait(); code != 0 {
		t.Errorf("berth exec exited %d after Ctrl-D, want 0", code)
	}
	p.cooked()
}

// TestInteractiveThroughAgent: with an agent running, exec -it and
// run --rm -it run in it as sessions on the user's own terminal: the same
// shell, window size and exit codes as without it.
func TestInteractiveThroughAgent(t *testing.T) {
	h := newHost(t, "e2eitagent")
	t.Setenv("BERTH_SOCKET", filepath.Join(os.Getenv("BERTH_RUN_DIR"), "berth.sock"))
	h.write("main.hcl", boxConfig)
	h.must("apply", "-auto-approve")
	a := startAgent(t)

	execResize(t, h, nil)

	p := startPTY(t, h.dir, nil, 24, 80, "run", "--rm", "-it", "--name", "itagent-sh", "e2eitagent/bb", "sh")
	p.expect("# ")
	p.send("stty size; exit $((2+4))\r")
	p.expect("24 80")
	if code := p.wait(); code != 6 {
		t.Errorf("berth run through the agent exited %d, want 6", code)
	}
	gone(t, "itagent-sh")

	// --rm -d: the agent deletes the container when it exits.
	code, out := runCmd(t, berthMain("/", nil, "run", "--rm", "-d", "--name", "itagent-d", "e2eitagent/bb", "sleep", "0.3"))
	if code != 0 || out != "itagent-d\n" {
		t.Fatalf("run --rm -d through the agent: exit %d\n%s", code, out)
	}
	dir := filepath.Join(os.Getenv("BERTH_STATE_DIR"), "containers", "itagent-d")
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent did not delete the --rm -d container once it exited")
		}
	}
	if logs := a.logs(); !strings.Contains(logs, `"command":"exec"`) || !strings.Contains(logs, `"command":"run"`) {
		t.Errorf("exec and run did not run as the agent's sessions:\n%s", logs)
	}
}

// TestRunProgramFromCurrentDirectory is the brief's first example: run a
// program from the current directory in a container, remove the container
// afterwards. The directory is mounted by a relative path, written as
// people write it (-v.:/src, the value attached).
func TestRunProgramFromCurrentDirectory(t *testing.T) {
	h := newHost(t, "e2erunprog")
	h.write("main.hcl", busyboxImage)
	h.must("apply", "-auto-approve")
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "program.sh"), []byte("echo \"hello from $(pwd), $(cat data.txt)\"\necho to-stderr >&2\nexit 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "data.txt"), []byte("data from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := berthMain(work, nil, "run", "--rm", "-v.:/src", "-w", "/src", "--name", "runprog", "e2erunprog/bb", "sh", "program.sh")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 {
		t.Fatalf("berth run: %v, want exit status 7\nstdout: %s\nstderr: %s", err, &stdout, &stderr)
	}
	if stdout.String() != "hello from /src, data from the host\n" {
		t.Errorf("stdout: %q", stdout.String())
	}
	if stderr.String() != "to-stderr\n" {
		t.Errorf("stderr: %q", stderr.String())
	}
	gone(t, "runprog")
}

// TestExecWithoutTerminal: without -t the process gets berth's own
// descriptors: piped input with -i, stdout and stderr apart, and its exit
// code is berth's.
func TestExecWithoutTerminal(t *testing.T) {
	h := newHost(t, "e2eexec")
	h.write("main.hcl", boxConfig)
	h.must("apply", "-auto-approve")
	name := "e2eexec-box"

	cmd := berthMain("/", nil, "exec", "-i", name, "cat")
	cmd.Stdin = strings.NewReader("data\nmore data\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "data\nmore data\n" {
		t.Errorf("echo data | berth exec -i %s cat: %v, %q", name, err, out)
	}

	cmd = berthMain("/", nil, "exec", "-e", "GREETING=hi there", "-w", "/etc", name, "sh", "-c", `echo "$GREETING from $(pwd)"; echo oops >&2; exit 5`)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 5 {
		t.Errorf("exec exit 5: %v", err)
	}
	if stdout.String() != "hi there from /etc\n" || stderr.String() != "oops\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	// -t without a terminal is refused as Docker refuses it.
	cmd = berthMain("/", nil, "exec", "-it", name, "sh")
	cmd.Stdin = strings.NewReader("")
	out, err = cmd.CombinedOutput()
	if !errors.As(err, &exit) || exit.ExitCode() != exitBerth || !strings.Contains(string(out), "the input device is not a TTY") {
		t.Errorf("exec -it without a terminal: %v\n%s", err, out)
	}
	// A container that does not exist.
	if code, out := runCmd(t, berthMain("/", nil, "exec", "nosuch", "true")); code != exitBerth || !strings.Contains(out, `no container "nosuch"`) {
		t.Errorf("exec in a missing container: exit %d\n%s", code, out)
	}
}

// TestRunInputAndSignals: berth run -i without a terminal reads the
// CLI's stdin whatever it is (a buffer here: the CLI in this process); a
// foreground container without -t is stopped by the SIGINT berth gets,
// and --rm removes it all the same.
func TestRunInputAndSignals(t *testing.T) {
	h := newHost(t, "e2erunin")
	h.write("main.hcl", busyboxImage)
	h.must("apply", "-auto-approve")

	var out, errOut bytes.Buffer
	c := &CLI{Stdin: strings.NewReader("line one\nline two\n"), Stdout: &out, Stderr: &errOut}
	code := c.Run(context.Background(), []string{"run", "--rm", "-i", "--name", "runin", "e2erunin/bb", "sh", "-c", "cat; exit 4"})
	if code != 4 || out.String() != "line one\nline two\n" {
		t.Errorf("run -i: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	gone(t, "runin")

	// busybox sh as PID 1 ignores SIGINT, so the stop ends in SIGKILL
	// after --stop-timeout; the trap shows the signal arrived.
	cmd := berthMain("/", nil, "run", "--rm", "--name", "runsig", "--stop-timeout", "1", "e2erunin/bb",
		"sh", "-c", `trap 'echo got-int' INT; echo ready; while true; do sleep 0.1; done`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	buf := make([]byte, 256)
	for !strings.Contains(got.String(), "ready") {
		n, err := stdout.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("berth run ended before the container was ready: %v\n%s%s", err, &got, &stderr)
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	rest, _ := io.ReadAll(stdout)
	got.Write(rest)
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 137 {
		t.Errorf("interrupted berth run: %v, want exit status 137 (SIGKILL after the stop timeout)\n%s", err, &stderr)
	}
	if !strings.Contains(got.String(), "got-int") || !strings.Contains(stderr.String(), "Stopping container runsig") {
		t.Errorf("stdout %q, stderr %q", got.String(), stderr.String())
	}
	gone(t, "runsig")
}

// TestRunDetached: -d prints the name and returns; exec reaches the
// container; --rm -d without the agent is refused; two containers cannot
// share a name.
func TestRunDetached(t *testing.T) {
	h := newHost(t, "e2erund")
	h.write("main.hcl", busyboxImage)
	h.must("apply", "-auto-approve")
	t.Cleanup(func() {
		c := &CLI{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
		c.Run(context.Background(), []string{"rm", "-f", "rund"})
		gone(t, "rund")
	})

	code, out := runCmd(t, berthMain("/", nil, "run", "-d", "--name", "rund", "-e", "WHO=detached", "e2erund/bb", "sleep", "3600"))
	if code != 0 || strings.TrimSpace(out) != "rund" {
		t.Fatalf("run -d: exit %d\n%s", code, out)
	}
	if code, out := runCmd(t, berthMain("/", nil, "exec", "rund", "sh", "-c", "echo $WHO")); code != 0 || out != "detached\n" {
		t.Errorf("exec in the detached container: exit %d %q", code, out)
	}
	if code, out := runCmd(t, berthMain("/", nil, "run", "-d", "--name", "rund", "e2erund/bb", "sleep", "1")); code != exitBerth || !strings.Contains(out, `a container named "rund" already exists`) {
		t.Errorf("a second container named rund: exit %d\n%s", code, out)
	}
	if code, out := runCmd(t, berthMain("/", nil, "run", "--rm", "-d", "e2erund/bb", "sleep", "1")); code != exitBerth || !strings.Contains(out, "--rm with -d needs the agent") {
		t.Errorf("--rm -d without the agent: exit %d\n%s", code, out)
	}
	// An apply cannot take a run container's name: it names the owner.
	h.write("main.hcl", busyboxImage+`
container "x" {
  name  = "rund"
  image = image.bb.ref
}
`)
	if code, out := h.berth("plan"); code == 0 || !strings.Contains(out, "(run)/container.rund") {
		t.Errorf("a plan for a container named like a run container: exit %d\n%s", code, out)
	}
	h.write("main.hcl", busyboxImage)
}

// TestRunOnNetwork is the brief's last example: containers of berth run on
// one network reach each other by name (--net, as the brief writes it),
// and a published port reaches one from the host.
func TestRunOnNetwork(t *testing.T) {
	h := newHost(t, "e2erunnet")
	h.write("main.hcl", busyboxImage+`
network "n" {
  subnet = "10.219.23.0/24"
}
`)
	h.must("apply", "-auto-approve")
	t.Cleanup(func() {
		c := &CLI{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
		c.Run(context.Background(), []string{"rm", "-f", "runweb"})
		gone(t, "runweb")
	})
	port := freePort(t)
	code, out := runCmd(t, berthMain("/", nil, "run", "-d", "--name", "runweb", "--net", "e2erunnet-n", "-p", "127.0.0.1:"+strconv.Itoa(port)+":8080",
		"--stop-timeout", "1", "e2erunnet/bb", "sh", "-c", "mkdir -p /www && echo hi-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"))
	if code != 0 {
		t.Fatalf("run -d: exit %d\n%s", code, out)
	}
	if got := get(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/"); got != "hi-from-web\n" {
		t.Errorf("GET the published port: %q", got)
	}
	code, out = runCmd(t, berthMain("/", nil, "run", "--rm", "--network", "e2erunnet-n", "--name", "runclient", "e2erunnet/bb",
		"sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://runweb:8080/ && exit; sleep 0.2; done; exit 1"))
	if code != 0 || out != "hi-from-web\n" {
		t.Errorf("a run container fetching from another by name: exit %d %q", code, out)
	}
	gone(t, "runclient")
	// One sentence that names the network once, and where networks come
	// from.
	code, out = runCmd(t, berthMain("/", nil, "run", "--rm", "--network", "nosuch", "e2erunnet/bb", "true"))
	if code != exitBerth || !strings.Contains(out, "network nosuch does not exist on this host") || strings.Count(out, "nosuch") != 1 || !strings.Contains(out, "berth state list") {
		t.Errorf("run on a network that does not exist: exit %d\n%s", code, out)
	}

	// A command that is not there exits 127, one that cannot be run
	// 126, as Docker's do; for run and for exec.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"run", "--rm", "e2erunnet/bb", "/nonexist"}, 127},
		{[]string{"run", "--rm", "e2erunnet/bb", "nonexist-command"}, 127},
		{[]string{"run", "--rm", "e2erunnet/bb", "/etc/passwd"}, 126},
		{[]string{"exec", "runweb", "/nonexist"}, 127},
		{[]string{"exec", "runweb", "/etc/passwd"}, 126},
	} {
		code, out := runCmd(t, berthMain("/", nil, tc.args...))
		if code != tc.code || !strings.Contains(out, tc.args[len(tc.args)-1]) {
			t.Errorf("berth %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.code, out)
		}
	}
}

// TestRunFlags: the flags parse as Docker's do, and bad values are
// refused with the accepted forms, before anything touches the host.
func TestRunFlags(t *testing.T) {
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		c := &CLI{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}
		return c.Run(context.Background(), args), out.String()
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-p", "abc", "img"}, "write -p [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]"},
		{[]string{"run", "-p", "80", "img"}, "write -p [IP:]HOST_PORT:CONTAINER_PORT"},
		{[]string{"run", "-p", "8080:80/sctp", "img"}, "/udp]"},
		{[]string{"run", "-p", "8080:80", "img"}, "-p needs a network"},
		{[]string{"run", "-v", "/data", "img"}, "write -v SRC:DST[:ro]"},
		{[]string{"run", "-v", "./nowhere-at-all:/x", "img"}, "does not exist on this host"},
		{[]string{"run", "-v", "/tmp:/x:rx", "img"}, "write -v SRC:DST[:ro]"},
		{[]string{"run", "-dit", "img"}, "-d cannot go with -i or -t"},
		{[]string{"run", "-it", "img", "sh"}, "the input device is not a TTY"},
		{[]string{"run", "--pull", "sometimes", "img"}, "write --pull missing, always or never"},
		{[]string{"run"}, "run needs an image"},
		{[]string{"run", "--no-such-flag", "img"}, "unknown flag: --no-such-flag"},
		{[]string{"exec", "box"}, "exec needs a container and a command"},
		{[]string{"exec", "-e", "=x", "box", "true"}, `-e "=x": write -e KEY=value`},
	} {
		code, out := run(tc.args...)
		if code != exitBerth || !strings.Contains(out, tc.want) {
			t.Errorf("berth %s: exit %d, want %d and %q in:\n%s", strings.Join(tc.args, " "), code, exitBerth, tc.want, out)
		}
	}
	if code, out := run("run", "--help"); code != 0 || !strings.Contains(out, "--rm") || !strings.Contains(out, "-v, --volume") {
		t.Errorf("run --help: exit %d\n%s", code, out)
	}

	// The container's own flags stay its own.
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"8080:80", "0.0.0.0:8080->80/tcp"},
		{"127.0.0.1:53:5353/udp", "127.0.0.1:53->5353/udp"},
	} {
		p, err := parsePort(tc.in)
		if got := p.HostIP + ":" + strconv.Itoa(p.Published) + "->" + strconv.Itoa(p.Target) + "/" + p.Protocol; err != nil || got != tc.want {
			t.Errorf("parsePort(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	fs := (&CLI{Stderr: io.Discard}).dockerFlags("run", "")
	rm := fs.Bool("rm", false, "")
	i := fs.BoolP("interactive", "i", false, "")
	tt := fs.BoolP("tty", "t", false, "")
	v := fs.StringArrayP("volume", "v", nil, "")
	e := fs.StringArrayP("env", "e", nil, "")
	if err := fs.Parse([]string{"--rm", "-it", "-v/a:/b", "-v", "c:/d", "-e", "A=1,2", "img", "sh", "-c", "ls -l", "--rm"}); err != nil {
		t.Fatal(err)
	}
	if !*rm || !*i || !*tt || strings.Join(*v, " ") != "/a:/b c:/d" || strings.Join(*e, " ") != "A=1,2" ||
		strings.Join(fs.Args(), "|") != "img|sh|-c|ls -l|--rm" {
		t.Errorf("parsed rm=%v i=%v t=%v v=%q e=%q args=%q", *rm, *i, *tt, *v, *e, fs.Args())
	}
}
