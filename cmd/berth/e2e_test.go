package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/internal/testutil"
)

// The end-to-end tests drive the CLI in-process against the real drivers:
// libcontainer containers, CNI networks, volumes and the image store, each
// test under its own state and run directories.

func TestMain(m *testing.M) {
	// main's init already turned a re-executed container init into the
	// container; what reaches here is the test binary itself, or — with
	// BERTH_TEST_CLI set — the CLI for tests that need a separate process
	// (signals, locks).
	if args := os.Getenv("BERTH_TEST_CLI"); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			panic(err)
		}
		c := &CLI{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
		os.Exit(c.Run(context.Background(), argv))
	}
	if _, err := testutil.BuildMonitor(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

type host struct {
	t    *testing.T
	dir  string   // configuration directory
	vars []string // -var flags every configuration command gets
}

// newHost gives the test its own berth host (state, run and cgroup
// directories) and a configuration directory holding a busybox rootfs.
func newHost(t *testing.T, project string) *host {
	testutil.RequireRoot(t)
	base := t.TempDir()
	t.Setenv("BERTH_STATE_DIR", filepath.Join(base, "state"))
	t.Setenv("BERTH_RUN_DIR", filepath.Join(base, "run"))
	t.Setenv("BERTH_CGROUP_PARENT", "/berth-test-"+project)
	t.Setenv("BERTH_CNI_PATH", testutil.CNIPath(t))
	t.Cleanup(func() {
		// After every project's destroy (cleanups run last first): the
		// cgroup parent must be gone with the last container.
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth-test-" + project)
		dirs2, _ := filepath.Glob("/sys/fs/cgroup/berth-test-" + project)
		for _, d := range append(dirs, dirs2...) {
			t.Errorf("cleanup: the container driver left the cgroup parent %s", d)
			os.Remove(d)
		}
	})
	return newProject(t, filepath.Join(base, project))
}

// newProject makes a configuration directory holding a busybox rootfs and
// destroys whatever its project made at cleanup, so the host stays clean.
func newProject(t *testing.T, dir string) *host {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", testutil.BusyboxRootfs(t), filepath.Join(dir, "rootfs")).CombinedOutput(); err != nil {
		t.Fatalf("copying the rootfs: %v: %s", err, out)
	}
	h := &host{t: t, dir: dir}
	t.Cleanup(func() {
		if code, out := h.berth("destroy", "-auto-approve", "-delete-volume-data"); code != 0 {
			t.Errorf("cleanup: berth destroy of %s: exit %d\n%s", filepath.Base(dir), code, out)
		}
	})
	return h
}

func (h *host) write(name, content string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// berth runs a command with -dir (and the host's variables) set and
// returns its exit code and output.
func (h *host) berth(args ...string) (int, string) {
	var out bytes.Buffer
	c := &CLI{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}
	full := []string{args[0]}
	switch {
	case len(args) > 1 && strings.HasSuffix(args[1], ".plan"):
		// apply FILE: a saved plan carries its directory and variables.
	case args[0] == "image" || args[0] == "exec" || verbNames[args[0]]:
		// Image commands work on the host's store, the verbs on
		// containers by name, not a configuration.
	case args[0] == "state" || args[0] == "output" || args[0] == "logs":
		full = append(full, "-dir", h.dir)
	default:
		full = append(full, "-dir", h.dir)
		full = append(full, h.vars...)
	}
	full = append(full, args[1:]...)
	code := c.Run(context.Background(), full)
	return code, out.String()
}

func (h *host) must(args ...string) string {
	h.t.Helper()
	code, out := h.berth(args...)
	if code != 0 {
		h.t.Fatalf("berth %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// get fetches a URL, retrying while the server starts.
func get(t *testing.T, url string) string {
	t.Helper()
	client := http.Client{Timeout: time.Second}
	var last error
	for range 50 {
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

const webConfig = `
variable "port" {
  type = number
}

variable "subnet" {
  type = string
}

image "bb" {
  rootfs = "./rootfs"
}

network "net" {
  subnet = var.subnet
}

volume "www" {}

container "web" {
  image        = image.bb.ref
  command      = ["httpd", "-f", "-p", "8080", "-h", "/www"]
  stop_timeout = "1s"

  network {
    name    = network.net.name
    aliases = ["site"]
  }

  port {
    published = var.port
    target    = 8080
    host_ip   = "127.0.0.1"
  }

  mount {
    volume = volume.www.name
    target = "/www"
  }
}

# The client reaches the server by its alias on the shared network and
# leaves what it fetched in a bind-mounted directory.
container "client" {
  image        = image.bb.ref
  command      = ["sh", "-c", "until wget -q -O /out/page http://site:8080/; do sleep 0.2; done; sleep 3600"]
  stop_timeout = "1s"
  depends_on   = [container.web]

  network {
    name = network.net.name
  }

  mount {
    bind   = "./out"
    target = "/out"
  }
}

output "web_ip" {
  value = container.web.ip_address
}
`

func TestApplyServeDriftDestroy(t *testing.T) {
	h := newHost(t, "e2eweb")
	port := freePort(t)
	h.write("main.hcl", webConfig)
	h.write("terraform.auto.hcl", "") // an empty file is a valid file
	if err := os.Mkdir(filepath.Join(h.dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.vars = []string{"-var", fmt.Sprintf("port=%d", port), "-var", "subnet=10.219.7.0/24"}

	out := h.must("apply", "-auto-approve")
	if !strings.Contains(out, "Apply complete! 5 added") {
		t.Fatalf("apply output:\n%s", out)
	}

	// The page through the published port and by the container's IP; the
	// volume was filled from the image's /www.
	if got := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); got != "hello from busybox\n" {
		t.Errorf("published port served %q", got)
	}
	ip := strings.TrimSpace(h.must("output", "-raw", "web_ip"))
	if !strings.HasPrefix(ip, "10.219.7.") {
		t.Fatalf("web_ip = %q, want an address in 10.219.7.0/24", ip)
	}
	if got := get(t, "http://"+ip+":8080/"); got != "hello from busybox\n" {
		t.Errorf("container IP served %q", got)
	}
	// Two containers on one network reach each other by name.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(h.dir, "out", "page"))
		if err == nil && string(b) == "hello from busybox\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client never fetched the page by name: %v %q", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A second plan has nothing to do.
	if code, out := h.berth("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("second plan: exit %d, want 0\n%s", code, out)
	}

	// Drift: the server is killed behind berth's back; the plan says so
	// and the apply starts it again, in place: what it wrote is still
	// there, as with compose up.
	h.must("exec", "e2eweb-web", "sh", "-c", "echo kept > /tmp/marker")
	if out, err := exec.Command("pkill", "-KILL", "-f", "httpd -f -p 8080 -h /www").CombinedOutput(); err != nil {
		t.Fatalf("pkill: %v %s", err, out)
	}
	time.Sleep(200 * time.Millisecond)
	code, out := h.berth("plan", "-detailed-exitcode")
	if code != 2 || !strings.Contains(out, "container.web will be updated in place: container exited with status 137 (SIGKILL); apply starts it again") {
		t.Fatalf("plan after the kill: exit %d\n%s", code, out)
	}
	// -refresh=false does not look, so it sees no drift.
	if code, out := h.berth("plan", "-refresh=false", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan -refresh=false: exit %d\n%s", code, out)
	}
	h.must("apply", "-auto-approve")
	if got := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); got != "hello from busybox\n" {
		t.Errorf("after repair the port served %q", got)
	}
	if got := h.must("exec", "e2eweb-web", "cat", "/tmp/marker"); got != "kept\n" {
		t.Errorf("after the restart the container's file holds %q, want kept", got)
	}
	if code, out := h.berth("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after the repair: exit %d\n%s", code, out)
	}

	// An in-place change keeps the container running.
	cfg := strings.Replace(webConfig, `stop_timeout = "1s"`, "stop_timeout = \"1s\"\n  resources {\n    memory = \"32M\"\n  }", 1)
	h.write("main.hcl", cfg)
	code, out = h.berth("plan", "-detailed-exitcode")
	if code != 2 || !strings.Contains(out, "container.web will be updated in place") {
		t.Fatalf("plan of a memory limit: exit %d\n%s", code, out)
	}
	h.must("apply", "-auto-approve")

	// Destroying a volume with data is refused without the flag.
	code, out = h.berth("destroy", "-auto-approve")
	if code == 0 || !strings.Contains(out, "volume.www holds") || !strings.Contains(out, "-delete-volume-data") {
		t.Fatalf("destroy without -delete-volume-data: exit %d\n%s", code, out)
	}
	h.must("destroy", "-auto-approve", "-delete-volume-data")
	if out := h.must("state", "list"); out != "" {
		t.Errorf("state after destroy:\n%s", out)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(os.Getenv("BERTH_STATE_DIR"))) {
		t.Errorf("mounts left under the state directory")
	}
}

func TestSavedPlanAndLock(t *testing.T) {
	h := newHost(t, "e2eplan")
	h.write("main.hcl", `
image "bb" {
  rootfs = "./rootfs"
}

volume "v" {}
`)
	planFile := filepath.Join(t.TempDir(), "saved.plan")
	h.must("plan", "-out", planFile)

	// While another process holds the project's lock, apply is refused
	// with the holder's name.
	holder := exec.Command(os.Args[0], "-test.run=TestLockHolder")
	holder.Env = append(os.Environ(), "BERTH_TEST_HOLD_LOCK="+h.dir)
	stdout, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make([]byte, 6)
	if _, err := io.ReadFull(stdout, ready); err != nil || string(ready) != "LOCKED" {
		t.Fatalf("lock holder did not start: %v %q", err, ready)
	}
	code, out := h.berth("apply", planFile)
	planCode, planOut := h.berth("plan")
	holder.Process.Kill()
	holder.Wait()
	if planCode == 0 || !strings.Contains(planOut, "-lock=false") {
		t.Errorf("plan while locked: exit %d, want a hint at -lock=false\n%s", planCode, planOut)
	}
	if code == 0 || !strings.Contains(out, `state of project "e2eplan" is locked by berth apply (pid `) {
		t.Fatalf("apply while locked: exit %d\n%s", code, out)
	}

	// The saved plan applies as saved, once.
	if out := h.must("apply", planFile); !strings.Contains(out, "2 added") {
		t.Fatalf("applying the saved plan:\n%s", out)
	}
	code, out = h.berth("apply", planFile)
	if code == 0 || !strings.Contains(out, "state changed since the plan was saved") {
		t.Fatalf("applying a stale plan: exit %d\n%s", code, out)
	}
	// A changed configuration makes a saved plan stale too.
	h.must("plan", "-out", planFile)
	h.write("extra.hcl", "volume \"w\" {}\n")
	code, out = h.berth("apply", planFile)
	if code == 0 || !strings.Contains(out, "configuration or its variables changed") {
		t.Fatalf("applying a plan after a configuration change: exit %d\n%s", code, out)
	}
}

// TestLockHolder is the helper process of TestSavedPlanAndLock: it takes the
// project's lock as berth apply would and holds it until killed.
func TestLockHolder(t *testing.T) {
	dir := os.Getenv("BERTH_TEST_HOLD_LOCK")
	if dir == "" {
		t.Skip("helper process")
	}
	c := &CLI{Stdout: io.Discard, Stderr: os.Stderr}
	s, err := c.open(filepath.Base(dir), "apply", true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	fmt.Print("LOCKED")
	time.Sleep(time.Minute)
}

func TestFailedApplyLeavesStateTrue(t *testing.T) {
	h := newHost(t, "e2efail")
	// The second container's command does not exist in the image: its
	// create fails after the image, volume and first container exist.
	h.write("main.hcl", `
image "bb" {
  rootfs = "./rootfs"
}

volume "v" {}

container "ok" {
  image        = image.bb.ref
  command      = ["sleep", "3600"]
  stop_timeout = "1s"
}

container "broken" {
  image      = image.bb.ref
  command    = ["/no/such/program"]
  depends_on = [container.ok]
}
`)
	code, out := h.berth("apply", "-auto-approve")
	if code == 0 || !strings.Contains(out, "container.broken: Creation failed") {
		t.Fatalf("apply with a broken container: exit %d\n%s", code, out)
	}
	list := h.must("state", "list")
	for _, want := range []string{"container.ok", "image.bb", "volume.v"} {
		if !strings.Contains(list, want) {
			t.Errorf("state misses %s after the failed apply:\n%s", want, list)
		}
	}
	if strings.Contains(list, "container.broken") {
		t.Errorf("state records the container whose create failed:\n%s", list)
	}
	// The next plan wants exactly the broken container.
	code, out = h.berth("plan", "-detailed-exitcode")
	if code != 2 || !strings.Contains(out, "Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy.") {
		t.Fatalf("plan after the failure: exit %d\n%s", code, out)
	}
}

func TestFmtAndValidate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "main.hcl")
	if err := os.WriteFile(path, []byte("volume \"v\" {\nlabels={a=\"b\"}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &CLI{Stdout: io.Discard, Stderr: io.Discard}
	if code := c.Run(context.Background(), []string{"fmt", "-check", dir}); code != 3 {
		t.Errorf("fmt -check of an unformatted file: exit %d, want 3", code)
	}
	if code := c.Run(context.Background(), []string{"fmt", dir}); code != 0 {
		t.Errorf("fmt: exit %d", code)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "  labels = { a = \"b\" }") {
		t.Errorf("fmt wrote:\n%s", b)
	}
	if code := c.Run(context.Background(), []string{"validate", "-dir", dir}); code != 0 {
		t.Errorf("validate of a valid configuration: exit %d", code)
	}
	if err := os.WriteFile(path, []byte("container \"c\" {\n  imag = 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	c.Stderr = &errOut
	if code := c.Run(context.Background(), []string{"validate", "-dir", dir}); code != 1 {
		t.Errorf("validate of an invalid configuration: exit %d", code)
	}
	if !strings.Contains(errOut.String(), "main.hcl line 2") || !strings.Contains(errOut.String(), "imag") {
		t.Errorf("diagnostics do not name the file, line and attribute:\n%s", errOut.String())
	}
}

func TestHostPortInUseRefusedAtPlan(t *testing.T) {
	h := newHost(t, "e2eport")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	h.write("main.hcl", fmt.Sprintf(`
image "bb" {
  rootfs = "./rootfs"
}

network "n" {
  subnet = "10.219.9.0/24"
}

container "web" {
  image   = image.bb.ref
  command = ["httpd", "-f", "-p", "80"]

  network {
    name = network.n.name
  }

  port {
    published = %d
    target    = 80
    host_ip   = "127.0.0.1"
  }
}
`, port))
	code, out := h.berth("apply", "-auto-approve")
	want := fmt.Sprintf("host port 127.0.0.1:%d/tcp is in use by a process on the host", port)
	if code == 0 || !strings.Contains(out, want) {
		t.Fatalf("apply with a host port in use: exit %d, want %q\n%s", code, want, out)
	}
	// Refused at plan time: nothing was made.
	if out := h.must("state", "list"); out != "" {
		t.Errorf("objects were created before the conflict was found:\n%s", out)
	}
}

// command runs the CLI as a separate process (the test binary re-executed
// by TestMain) with the host's environment.
func (h *host) command(args ...string) *exec.Cmd {
	full := append([]string{args[0], "-dir", h.dir}, args[1:]...)
	b, _ := json.Marshal(full)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "BERTH_TEST_CLI="+string(b))
	return cmd
}

// TestInterruptFinishesInFlight: the first SIGINT lets the change in
// flight finish and starts nothing new; the state records exactly what was
// done, and the next apply finishes the job.
func TestInterruptFinishesInFlight(t *testing.T) {
	h := newHost(t, "e2eint")
	// busybox sleep as PID 1 ignores SIGTERM, so each stop takes the full
	// stop_timeout: a window in which to interrupt.
	h.write("main.hcl", `
image "bb" {
  rootfs = "./rootfs"
}

container "sleeper" {
  count        = 3
  image        = image.bb.ref
  command      = ["sleep", "3600"]
  stop_timeout = "2s"
}
`)
	h.must("apply", "-auto-approve")

	interruptFirstDelete(t, h.command("destroy", "-auto-approve", "-parallelism", "1"))
	list := h.must("state", "list")
	if n := strings.Count(list, "container.sleeper["); n != 2 {
		t.Errorf("state holds %d containers after the interruption, want 2:\n%s", n, list)
	}
	// The next destroy finishes the job.
	h.must("destroy", "-auto-approve")
	if list := h.must("state", "list"); list != "" {
		t.Errorf("state after the second destroy:\n%s", list)
	}
}

// TestInspectCommands covers logs, state show and rm, apply -json, and a
// network deleted behind berth's back.
func TestInspectCommands(t *testing.T) {
	h := newHost(t, "e2einspect")
	h.write("main.hcl", `
image "bb" {
  rootfs = "./rootfs"
}

network "n" {
  subnet = "10.219.11.0/24"
}

container "talker" {
  image        = image.bb.ref
  command      = ["sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 3600"]
  stop_timeout = "1s"

  network {
    name = network.n.name
  }
}

output "bridge" {
  value = network.n.bridge
}
`)
	out := h.must("apply", "-auto-approve", "-json")
	var events []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("apply -json printed a line that is not JSON: %q", line)
		}
		events = append(events, ev)
	}
	if last := events[len(events)-1]; last["type"] != "apply_complete" && events[len(events)-2]["type"] != "apply_complete" {
		t.Errorf("apply -json did not end with apply_complete: %v", events)
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		logs := h.must("logs", "container.talker")
		if strings.Contains(logs, "to-stdout") && strings.Contains(logs, "to-stderr") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth logs:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	show := h.must("state", "show", "network.n")
	if !strings.Contains(show, `subnet   = "10.219.11.0/24"`) || !strings.Contains(show, `network "n" {`) {
		t.Errorf("state show:\n%s", show)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(h.must("state", "show", "-json", "container.talker")), &obj); err != nil || obj["address"] != "container.talker" {
		t.Errorf("state show -json: %v %v", err, obj)
	}

	// The bridge is deleted by hand: the plan recreates the network and
	// replaces the container attached to it; the apply repairs both.
	if out, err := exec.Command("ip", "link", "del", strings.TrimSpace(h.must("output", "-raw", "bridge"))).CombinedOutput(); err != nil {
		t.Fatalf("ip link del: %v %s", err, out)
	}
	code, out := h.berth("plan", "-detailed-exitcode")
	if code != 2 || !strings.Contains(out, "network.n will be created: bridge") || !strings.Contains(out, "container.talker must be replaced") {
		t.Fatalf("plan after the bridge was deleted: exit %d\n%s", code, out)
	}
	h.must("apply", "-auto-approve")
	if code, out := h.berth("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after the repair: exit %d\n%s", code, out)
	}

	// state rm forgets without touching the host.
	if out := h.must("state", "rm", "container.talker"); !strings.Contains(out, "left as it is") {
		t.Errorf("state rm: %s", out)
	}
	if strings.Contains(h.must("state", "list"), "container.talker") {
		t.Error("state rm did not forget the container")
	}
	// Take it back into the state by applying: the create finds the
	// running container and adopts it, then destroy removes it.
	h.must("apply", "-auto-approve")
}

// TestParallelOnOneNetwork creates and deletes containers that share a
// network all at once: each create and delete rewrites its peers' hosts
// files, and none may trip over another (a delete once failed with
// "directory not empty" when a peer's refresh wrote into it).
func TestParallelOnOneNetwork(t *testing.T) {
	h := newHost(t, "e2epar")
	base := freePort(t)
	h.write("main.hcl", fmt.Sprintf(`
image "bb" {
  rootfs = "./rootfs"
}

network "n" {
  subnet = "10.219.13.0/24"
}

# Published ports make each delete slow and uneven (CNI DEL of portmap),
# which interleaves deletes with peers' hosts refreshes.
container "peer" {
  count        = 10
  image        = image.bb.ref
  command      = ["httpd", "-f", "-p", "80", "-h", "/www"]
  stop_timeout = "1s"

  network {
    name    = network.n.name
    aliases = ["peer${count.index}"]
  }

  port {
    published = %d + count.index
    target    = 80
    host_ip   = "127.0.0.2"
  }
}
`, base))
	for round := range 2 {
		h.must("apply", "-auto-approve")
		hosts, err := os.ReadFile(filepath.Join(os.Getenv("BERTH_STATE_DIR"), "containers", "e2epar-peer-0", "hosts"))
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 10; i++ {
			if !strings.Contains(string(hosts), fmt.Sprintf("e2epar-peer-%d peer%d", i, i)) {
				t.Fatalf("round %d: peer 0's hosts file lacks peer %d:\n%s", round, i, hosts)
			}
		}
		h.must("destroy", "-auto-approve")
	}
}

// otherProject is a second project on h's host: its own configuration
// directory (with a busybox rootfs) beside h's, sharing h's state, run and
// cgroup directories. It is destroyed at cleanup, before h.
func (h *host) otherProject(project string) *host {
	h.t.Helper()
	return newProject(h.t, filepath.Join(filepath.Dir(h.dir), project))
}

// TestHostNamesBelongToOneProject: a project declaring the container,
// network and volume names another project's objects hold is refused at
// plan, each refusal naming the owner, and the other project's objects
// are untouched: its container keeps running and its plan stays empty.
func TestHostNamesBelongToOneProject(t *testing.T) {
	hello := newHost(t, "e2eown")
	hello.write("main.hcl", `
image "bb" {
  rootfs = "./rootfs"
}

network "front" {
  subnet = "10.219.15.0/24"
}

volume "data" {}

container "web" {
  image        = image.bb.ref
  command      = ["sleep", "3600"]
  stop_timeout = "1s"

  network {
    name = network.front.name
  }

  mount {
    volume = volume.data.name
    target = "/data"
  }
}
`)
	hello.must("apply", "-auto-approve")
	pidFile := filepath.Join(os.Getenv("BERTH_RUN_DIR"), "containers", "e2eown-web", "state.json")
	before, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}

	x := hello.otherProject("e2exproj")
	x.write("main.hcl", `
image "bb" {
  rootfs = "./rootfs"
}

network "n" {
  name   = "e2eown-front"
  subnet = "10.219.16.0/24"
}

volume "v" {
  name = "e2eown-data"
}

container "z" {
  name         = "e2eown-web"
  image        = image.bb.ref
  command      = ["sleep", "3600"]
  stop_timeout = "1s"

  network {
    name = network.n.name
  }

  mount {
    volume = volume.v.name
    target = "/data"
  }
}
`)
	for _, args := range [][]string{{"plan"}, {"apply", "-auto-approve"}} {
		code, out := x.berth(args...)
		for _, want := range []string{
			`container "e2eown-web" already exists on this host and belongs to e2eown/container.web; choose another name, or destroy it there`,
			`network "e2eown-front" already exists on this host and belongs to e2eown/network.front`,
			`volume "e2eown-data" already exists on this host and belongs to e2eown/volume.data`,
		} {
			if code == 0 || !strings.Contains(out, want) {
				t.Errorf("%s of the second project: exit %d, want %q\n%s", args[0], code, want, out)
			}
		}
	}
	if out := x.must("state", "list"); out != "" {
		t.Errorf("the second project recorded objects:\n%s", out)
	}

	// The first project's container is the same process, still running,
	// and its plan is empty.
	after, err := os.ReadFile(pidFile)
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the first project's container changed (%v)", err)
	}
	if code, out := hello.berth("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan of the first project: exit %d, want no changes\n%s", code, out)
	}
}

// interruptFirstDelete runs a destroy of one change at a time, sends it
// SIGINT once the first deletion starts, and checks what the user is
// promised: it fails, says why, and exactly the change in flight finishes.
func interruptFirstDelete(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasSuffix(sc.Text(), ": Destroying...") {
			cmd.Process.Signal(syscall.SIGINT)
			break
		}
	}
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("interrupted destroy: %v, want exit 1\n%s", err, out.String())
	}
	if !strings.Contains(stderr.String(), "Interrupt received") || !strings.Contains(stderr.String(), "destroy stopped before it finished") {
		t.Errorf("stderr does not explain the interruption:\n%s", stderr.String())
	}
	if n := strings.Count(out.String(), "Destruction complete"); n != 1 {
		t.Errorf("%d deletions completed, want exactly the one in flight\n%s", n, out.String())
	}
}
