package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/agent"
	"github.com/seed-e88ffcd2/berth/agent/api"
	"github.com/seed-e88ffcd2/berth/resource"
)

// verbNames are the verbs the end-to-end helper runs without -dir.
var verbNames = map[string]bool{
	"ps": true, "inspect": true, "start": true, "stop": true, "restart": true, "kill": true,
	"rm": true, "top": true, "stats": true, "events": true,
}

// syncBuffer is a buffer a command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// verb runs a verb in-process until it ends or ctx does, with stdout and
// stderr apart.
func (h *host) verb(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errOut syncBuffer
	c := &CLI{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut,
		Signals: func() (<-chan os.Signal, func()) { return nil, func() {} }}
	code = c.Run(ctx, args)
	return code, out.String(), errOut.String()
}

func (h *host) mustVerb(args ...string) (stdout, stderr string) {
	h.t.Helper()
	code, out, errOut := h.verb(context.Background(), args...)
	if code != 0 {
		h.t.Fatalf("berth %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out, errOut
}

// jsonLines parses one JSON object a line.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var list []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		list = append(list, m)
	}
	return list
}

func (h *host) inspectOne(name string) map[string]any {
	h.t.Helper()
	out, _ := h.mustVerb("inspect", name)
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		h.t.Fatalf("inspect %s: %v\n%s", name, err, out)
	}
	return list[0]
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const verbsConfig = `
image "bb" {
  rootfs = "./rootfs"
}

container "talker" {
  image        = image.bb.ref
  command      = ["sh", "-c", "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three; exec sleep 3600"]
  stop_timeout = "1s"
  restart      = "no"
}

container "counter" {
  image   = image.bb.ref
  command = ["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done"]
  restart = "no"
}
`

// TestVerbsWithoutAgent drives every verb through the CLI against real
// containers, with no agent: the CLI acts on the host itself.
func TestVerbsWithoutAgent(t *testing.T) {
	h := newHost(t, "e2everbs")
	h.write("main.hcl", verbsConfig)
	h.must("apply", "-auto-approve")
	testVerbs(t, h, "e2everbs", h.berth)
}

// TestVerbsThroughAgent: the same, with an agent running: the verbs go
// through its API, plan and apply through its sessions.
func TestVerbsThroughAgent(t *testing.T) {
	h := newHost(t, "e2everbsagent")
	t.Setenv("BERTH_SOCKET", filepath.Join(os.Getenv("BERTH_RUN_DIR"), "berth.sock"))
	h.write("main.hcl", verbsConfig)
	a := startAgent(t)
	config := func(args ...string) (int, string) { return h.run(nil, args...) }
	if code, out := config("apply", "-auto-approve"); code != 0 {
		t.Fatalf("apply through the agent: exit %d\n%s", code, out)
	}
	// Not this process's host: a command that did not reach the agent
	// would be refused, so the verbs' answers are the agent's.
	if _, err := agent.OpenLocal(agent.DefaultConfig()); err == nil {
		t.Fatal("the host opened in-process while the agent runs")
	}
	testVerbs(t, h, "e2everbsagent", config)
	// The API refuses what the CLI would not send.
	c, err := api.Dial(os.Getenv("BERTH_SOCKET"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Do(context.Background(), "POST", "/v1/containers/e2everbsagent-talker/stop?timeout=soon", nil, nil)
	if !errors.Is(err, resource.ErrInvalid) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("stop?timeout=soon: %v", err)
	}

	// The supervisor: health in ps, and a person's stop is not a crash
	// that the restart policy repairs.
	doctor := "e2everbsagent-doctor"
	h.write("doctor.hcl", `
container "doctor" {
  image        = image.bb.ref
  command      = ["sleep", "3600"]
  restart      = "always"
  stop_timeout = "1s"

  healthcheck {
    command  = ["true"]
    interval = "1s"
  }
}
`)
	if code, out := config("apply", "-auto-approve"); code != 0 {
		t.Fatalf("apply of the doctor: exit %d\n%s", code, out)
	}
	waitFor(t, "the doctor to be healthy in berth ps", func() bool {
		out, _ := h.mustVerb("ps")
		return strings.Contains(out, "(healthy)")
	})
	if in := h.inspectOne(doctor); in["health"] != "healthy" || in["health_check"] == nil {
		t.Errorf("inspect of a healthy container: %v", in)
	}
	running := h.inspectOne(doctor)
	dies := func() int {
		return len(jsonLines(t, first(h.mustVerb("events", "--since", "1m", "--until", "0s", "--format", "json", "--filter", "container="+doctor, "--filter", "event=die"))))
	}
	diedBefore := dies()
	h.mustVerb("stop", doctor)
	// The supervisor records its decision (a restart due, or none)
	// before it reports the exit: once the die is out, a restart
	// decided would show, pending or made.
	waitFor(t, "the supervisor to report the doctor's exit", func() bool { return dies() > diedBefore })
	if in := h.inspectOne(doctor); in["status"] != "exited" || in["restarting"] == true || in["started_at"] != running["started_at"] {
		t.Errorf("the supervisor restarts a container a person stopped: %v", in)
	}
	events := jsonLines(t, first(h.mustVerb("events", "--since", "1m", "--until", "0s", "--format", "json", "--filter", "container="+doctor)))
	var seen []string
	for _, e := range events {
		seen = append(seen, e["type"].(string))
		if e["type"] == "stop" && e["by_user"] != true {
			t.Errorf("stop event not marked as a person's: %v", e)
		}
	}
	if got := strings.Join(seen, " "); !strings.Contains(got, "health_status") || !strings.Contains(got, "stop") || !strings.Contains(got, "die") {
		t.Errorf("the doctor's events: %s", got)
	}
	h.mustVerb("start", doctor)
	waitFor(t, "the doctor to be healthy again", func() bool { return h.inspectOne(doctor)["health"] == "healthy" })

	// Without the agent, ps shows what its supervisor recorded last.
	if code := a.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("agent exit %d", code)
	}
	if out, _ := h.mustVerb("ps"); !strings.Contains(out, "(healthy)") {
		t.Errorf("ps without the agent lost the recorded health:\n%s", out)
	}
}

// testVerbs is the verbs' end-to-end run, with or without an agent;
// config runs plan and apply.
func testVerbs(t *testing.T, h *host, project string, config func(args ...string) (int, string)) {
	ctx := context.Background()
	talker, counter := project+"-talker", project+"-counter"
	owner := project + "/container.talker"

	// logs -f follows the counter until it exits, then ends.
	start := time.Now()
	code, out, errOut := h.verb(ctx, "logs", "-f", counter)
	if code != 0 || out != "line1\nline2\nline3\nline4\nline5\n" {
		t.Fatalf("logs -f %s: exit %d\n%s%s", counter, code, out, errOut)
	}
	if time.Since(start) > 8*time.Second {
		t.Errorf("logs -f took %v: it did not end with the container", time.Since(start))
	}

	// logs: stdout to stdout, stderr to stderr; tail, since, timestamps,
	// and the project's address.
	waitFor(t, "the talker's output", func() bool {
		_, out, _ := h.verb(ctx, "logs", talker)
		return strings.Contains(out, "three")
	})
	if out, errOut := h.mustVerb("logs", talker); out != "one\nthree\n" || errOut != "two\n" {
		t.Errorf("logs: stdout %q, stderr %q", out, errOut)
	}
	if out, errOut := h.mustVerb("logs", "--tail", "2", talker); out != "three\n" || errOut != "two\n" {
		t.Errorf("logs --tail 2: stdout %q, stderr %q", out, errOut)
	}
	if out, errOut := h.mustVerb("logs", "-n", "0", talker); out != "" || errOut != "" {
		t.Errorf("logs -n 0: %q %q", out, errOut)
	}
	if out, _ := h.mustVerb("logs", "--since", time.Now().Add(time.Hour).Format(time.RFC3339), talker); out != "" {
		t.Errorf("logs --since the future: %q", out)
	}
	if out, _ := h.mustVerb("logs", "--since", "10m", "-t", talker); !strings.HasPrefix(out, time.Now().UTC().Format("2006-01-02T")) || !strings.HasSuffix(out, "Z three\n") {
		t.Errorf("logs --since 10m -t: %q", out)
	}
	if out := h.must("logs", "container.talker"); !strings.Contains(out, "one\n") || !strings.Contains(out, "two\n") {
		t.Errorf("logs container.talker: %q", out)
	}
	for _, e := range jsonLines(t, first(h.mustVerb("logs", "--format", "json", talker))) {
		if e["stream"] == nil || e["time"] == nil || e["log"] == nil {
			t.Errorf("logs --format json line %v", e)
		}
	}
	if out, errOut := h.mustVerb("logs", "--tail", "-1", talker); out != "one\nthree\n" || errOut != "two\n" {
		t.Errorf("logs --tail -1 (all, as docker's): stdout %q, stderr %q", out, errOut)
	}
	if code, _, errOut := h.verb(ctx, "logs", "--tail", "some", talker); code != 1 || !strings.Contains(errOut, "--tail") {
		t.Errorf("logs --tail some: exit %d %s", code, errOut)
	}

	// ps: running only, then all; as a table, JSON and names.
	out, _ = h.mustVerb("ps")
	if !strings.Contains(out, talker) || strings.Contains(out, counter) || !strings.Contains(out, owner) || !strings.Contains(out, "Up ") {
		t.Errorf("ps:\n%s", out)
	}
	out, _ = h.mustVerb("ps", "-a")
	if !strings.Contains(out, counter) || !strings.Contains(out, "Exited (0)") {
		t.Errorf("ps -a:\n%s", out)
	}
	var found bool
	for _, c := range jsonLines(t, first(h.mustVerb("ps", "-a", "--format", "json"))) {
		if c["name"] == talker {
			found = c["status"] == "running" && c["owner"] == owner && c["project"] == project && c["address"] == "container.talker"
		}
	}
	if !found {
		t.Errorf("ps --format json has no running %s owned by %s", talker, owner)
	}
	if out, _ := h.mustVerb("ps", "-q"); strings.TrimSpace(out) != talker {
		t.Errorf("ps -q: %q", out)
	}

	// inspect
	in := h.inspectOne(talker)
	if in["status"] != "running" || in["owner"] != owner || in["pid"].(float64) <= 0 || in["restart"] != "no" {
		t.Errorf("inspect: %v", in)
	}
	if code, out, errOut := h.verb(ctx, "inspect", talker, "nosuch"); code != 1 || !strings.Contains(errOut, `no container "nosuch"`) || !strings.Contains(out, talker) {
		t.Errorf("inspect of one missing: exit %d\n%s%s", code, out, errOut)
	}

	// top and stats
	out, _ = h.mustVerb("top", talker)
	if !strings.Contains(out, "PID") || !strings.Contains(out, "sleep 3600") || !strings.Contains(out, "root") {
		t.Errorf("top:\n%s", out)
	}
	var procs []map[string]any
	if err := json.Unmarshal([]byte(first(h.mustVerb("top", "--format", "json", talker))), &procs); err != nil || len(procs) == 0 || procs[0]["command"] != "sleep 3600" {
		t.Errorf("top --format json: %v %v", procs, err)
	}
	out, _ = h.mustVerb("stats", "--no-stream", talker)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], talker) {
		t.Errorf("stats --no-stream:\n%s", out)
	}
	stats := jsonLines(t, first(h.mustVerb("stats", "--no-stream", "--format", "json")))
	if len(stats) != 1 || stats[0]["name"] != talker || stats[0]["pids"].(float64) < 1 || stats[0]["memory_usage"].(float64) <= 0 || stats[0]["memory_limit"].(float64) <= 0 {
		t.Errorf("stats --no-stream --format json: %v", stats)
	}

	// Streaming stats in a pipe: a line a sample, until interrupted.
	statsCtx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	code, out, errOut = h.verb(statsCtx, "stats", talker)
	cancel()
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) < 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[2], talker) {
		t.Errorf("stats, streaming for 2.5s: exit %d\n%s%s", code, out, errOut)
	}

	// Live events while the talker is stopped and started again. From
	// a time before the stop: whenever the stream opens, what happened
	// since is in it (from the supervisor's history, or without an agent
	// the containers' own records), then what happens next.
	evCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	var evBuf, evErr syncBuffer
	evDone := make(chan struct{})
	evSince := time.Now().Format(time.RFC3339Nano)
	go func() {
		defer close(evDone)
		c := &CLI{Stdin: strings.NewReader(""), Stdout: &evBuf, Stderr: &evErr,
			Signals: func() (<-chan os.Signal, func()) { return nil, func() {} }}
		c.Run(evCtx, []string{"events", "--since", evSince, "--format", "json", "--filter", "container=" + talker})
	}()

	// stop: the note says the next apply undoes it.
	out, errOut = h.mustVerb("stop", "-t", "1", talker)
	if out != talker+"\n" || !strings.Contains(errOut, "container "+talker+" stopped; it belongs to project "+project+" (container.talker): the next berth apply starts it again") {
		t.Errorf("stop: %q %q", out, errOut)
	}
	in = h.inspectOne(talker)
	if in["status"] != "exited" || in["stopped_by_user"] != true || in["exit_code"].(float64) != 137 {
		t.Errorf("inspect after stop: %v", in)
	}
	if out, _ := h.mustVerb("ps"); strings.Contains(out, talker) {
		t.Errorf("ps lists a stopped container:\n%s", out)
	}
	if out, _ := h.mustVerb("ps", "-a"); !strings.Contains(out, "Exited (137)") {
		t.Errorf("ps -a after stop:\n%s", out)
	}
	// stats of a stopped container: a row of zeros, as docker's.
	out, _ = h.mustVerb("stats", "--no-stream", talker)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], talker) || !strings.Contains(lines[1], "0.00%") || !strings.HasSuffix(lines[1], " 0") {
		t.Errorf("stats --no-stream of a stopped container:\n%s", out)
	}
	if code, out := config("plan", "-detailed-exitcode"); code != 2 || !strings.Contains(out, "container.talker") {
		t.Errorf("plan after stop: exit %d\n%s", code, out)
	}
	if code, _, errOut := h.verb(ctx, "stop", "nosuch"); code != 1 || !strings.Contains(errOut, `no container "nosuch"`) {
		t.Errorf("stop nosuch: %d %s", code, errOut)
	}

	// start, restart
	if out, _ := h.mustVerb("start", talker); out != talker+"\n" {
		t.Errorf("start: %q", out)
	}
	in = h.inspectOne(talker)
	if in["status"] != "running" || in["stopped_by_user"] == true {
		t.Errorf("inspect after start: %v", in)
	}
	// Starting one already running is no failure, as with docker start.
	if code, out, errOut := h.verb(ctx, "start", talker); code != 0 || out != talker+"\n" || errOut != "" {
		t.Errorf("start of a running container: exit %d %q %q", code, out, errOut)
	}
	sawStopAndStart := func() bool {
		var actions []string
		for _, line := range strings.Split(evBuf.String(), "\n") {
			var e map[string]any
			if json.Unmarshal([]byte(line), &e) == nil {
				actions = append(actions, fmt.Sprint(e["type"]))
			}
		}
		got := strings.Join(actions, " ")
		return strings.Contains(got, "die") && strings.Contains(got, "start")
	}
	for deadline := time.Now().Add(10 * time.Second); !sawStopAndStart() && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	stopEvents()
	<-evDone
	evOut := evBuf.String()
	for _, e := range jsonLines(t, evOut) {
		if e["container"] != talker {
			t.Errorf("events --filter container=%s printed %v", talker, e)
		}
	}
	if !sawStopAndStart() {
		t.Errorf("events while stopped and started: no die and start\n%s%s", evOut, evErr.String())
	}

	before := in["started_at"]
	out, _ = h.mustVerb("restart", "-t", "0", "--format", "json", talker)
	if r := jsonLines(t, out); len(r) != 1 || r[0]["status"] != "running" || r[0]["started_at"] == before {
		t.Errorf("restart --format json: %s (started before %v)", out, before)
	}

	// kill: a signal it survives, then SIGKILL.
	if _, errOut := h.mustVerb("kill", "-s", "TERM", talker); errOut != "" {
		t.Errorf("kill -s TERM said %q", errOut)
	}
	time.Sleep(200 * time.Millisecond)
	if in := h.inspectOne(talker); in["status"] != "running" {
		t.Errorf("sleep as PID 1 died of SIGTERM: %v", in)
	}
	if code, _, errOut := h.verb(ctx, "kill", "-s", "NOPE", talker); code != 1 || !strings.Contains(errOut, "KILL, TERM") {
		t.Errorf("kill -s NOPE: %d %s", code, errOut)
	}
	h.mustVerb("kill", talker)
	waitFor(t, "the kill", func() bool { return h.inspectOne(talker)["status"] == "exited" })

	// Past events, up to now: the stream ends by itself.
	events := jsonLines(t, first(h.mustVerb("events", "--since", "5m", "--until", time.Now().Add(time.Second).Format(time.RFC3339Nano), "--format", "json", "-f", "event=die")))
	if len(events) == 0 || events[len(events)-1]["container"] == nil {
		t.Errorf("events --since 5m --until now: %v", events)
	}
	for _, e := range events {
		if e["type"] != "die" {
			t.Errorf("events --filter event=die printed %v", e)
		}
	}
	if out, _ := h.mustVerb("events", "--since", "5m", "--until", "0s"); !strings.Contains(out, " container ") {
		t.Errorf("events as text: %q", out)
	}
	// A filter names what the user typed, and the event types there are.
	if code, _, errOut := h.verb(ctx, "events", "-f", "event=bogus"); code != 1 || !strings.Contains(errOut, `--filter event=bogus: "bogus" is not an event type; use one of create, start, die`) {
		t.Errorf("events -f event=bogus: exit %d %q", code, errOut)
	}

	// rm: refused while running, forced, and the next apply recreates it.
	h.mustVerb("start", talker)
	if code, _, errOut := h.verb(ctx, "rm", talker); code != 1 || !strings.Contains(errOut, "is running") || !strings.Contains(errOut, "rm -f") {
		t.Errorf("rm of a running container: %d %s", code, errOut)
	}
	out, errOut = h.mustVerb("rm", "-f", talker)
	if out != talker+"\n" || !strings.Contains(errOut, "the next berth plan shows it missing and berth apply creates it again") {
		t.Errorf("rm -f: %q %q", out, errOut)
	}
	if code, _, _ := h.verb(ctx, "inspect", talker); code != 1 {
		t.Error("inspect after rm found it")
	}
	if code, out := config("plan", "-detailed-exitcode"); code != 2 || !strings.Contains(out, "container.talker will be created") {
		t.Errorf("plan after rm: exit %d\n%s", code, out)
	}
	if code, out := config("apply", "-auto-approve"); code != 0 {
		t.Fatalf("apply after rm: exit %d\n%s", code, out)
	}
	if in := h.inspectOne(talker); in["status"] != "running" {
		t.Errorf("after apply: %v", in)
	}
}

func first(a, _ string) string { return a }
