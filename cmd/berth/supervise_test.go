package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const survivorsConfig = `
image "bb" {
  rootfs = "./rootfs"
}

# Six counters writing a line every 10 ms, three sleepers, and a container
# that exits with code 3 once told to (a file in its root filesystem),
# then runs for good when its restart policy starts it again.
container "counter" {
  count        = 6
  image        = image.bb.ref
  command      = ["sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.01; done"]
  restart      = "always"
  stop_timeout = "1s"
}

container "sleeper" {
  count        = 3
  image        = image.bb.ref
  command      = ["sleep", "3600"]
  restart      = "unless-stopped"
  stop_timeout = "1s"

  healthcheck {
    command  = ["true"]
    interval = "200ms"
  }
}

container "failing" {
  image        = image.bb.ref
  command      = ["sh", "-c", "if [ -f /tmp/done ]; then exec sleep 3600; fi; while [ ! -f /tmp/go ]; do sleep 0.05; done; touch /tmp/done; exit 3"]
  restart      = "on-failure"
  stop_timeout = "1s"
}
`

// TestAgentSurvivesSIGKILL is the supervisor's promise: SIGKILL the agent
// while ten containers run, let one exit with code 3 while no agent runs,
// start a new agent. Every container is adopted again (the same
// processes), the exit is reported with its code and handled by its
// restart policy, the counters' logs go on without a gap or a duplicate,
// and the next plan has nothing to do.
func TestAgentSurvivesSIGKILL(t *testing.T) {
	h := newHost(t, "e2esurvive")
	t.Setenv("BERTH_SOCKET", filepath.Join(os.Getenv("BERTH_RUN_DIR"), "berth.sock"))
	h.write("main.hcl", survivorsConfig)
	first := startAgent(t)
	if code, out := h.run(nil, "apply", "-auto-approve"); code != 0 {
		t.Fatalf("apply through the agent: exit %d\n%s", code, out)
	}
	counters := make([]string, 6)
	for i := range counters {
		counters[i] = fmt.Sprintf("e2esurvive-counter-%d", i)
	}
	failing := "e2esurvive-failing"
	waitFor(t, "the sleepers to be healthy", func() bool {
		for _, c := range ps(t, h) {
			if strings.HasPrefix(c.Name, "e2esurvive-sleeper") && c.Health != "healthy" {
				return false
			}
		}
		return true
	})
	running := ps(t, h)
	if len(running) != 10 {
		t.Fatalf("%d containers run, want 10: %+v", len(running), running)
	}
	before := pids(t, h, running)

	if code := first.stop(syscall.SIGKILL); code != -1 {
		t.Fatalf("the agent exited with %d on SIGKILL", code)
	}
	linesAtKill := map[string]int{}
	for _, c := range counters {
		linesAtKill[c] = len(counted(t, h, c))
	}
	// While no agent runs: the containers go on, and one exits with 3.
	goFile := filepath.Join(os.Getenv("BERTH_STATE_DIR"), "containers", failing, "rootfs", "tmp", "go")
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failing container to exit", func() bool {
		in := h.inspectOne(failing)
		return in["status"] == "exited"
	})
	if in := h.inspectOne(failing); in["exit_code"] != 3.0 {
		t.Fatalf("the failing container exited with %v, want 3", in["exit_code"])
	}

	startAgent(t)
	// The exit, reported with its real code, and the restart policy
	// applied.
	waitFor(t, "the failing container's exit and restart to be reported", func() bool {
		events, _ := h.mustVerb("events", "--since", "10m", "--until", "0s", "--format", "json", "--filter", "container="+failing)
		died, restarted := false, false
		for _, e := range jsonLines(t, events) {
			switch e["type"] {
			case "die":
				died = died || e["exit_code"] == 3.0 && strings.Contains(fmt.Sprint(e["message"]), "while no agent ran")
			case "restart":
				restarted = died
			}
		}
		return restarted
	})
	waitFor(t, "the failing container to run again", func() bool {
		in := h.inspectOne(failing)
		return in["status"] == "running" && in["restart_count"] == 1.0
	})

	// Every other container adopted as it was: the same processes.
	running = ps(t, h)
	if len(running) != 10 {
		t.Errorf("%d containers run after the agent restarted, want 10: %+v", len(running), running)
	}
	after := pids(t, h, running)
	for name, pid := range before {
		if name != failing && after[name] != pid {
			t.Errorf("%s was restarted (pid %d, then %d): it should have been adopted", name, pid, after[name])
		}
	}
	waitFor(t, "the sleepers to be healthy again", func() bool {
		for _, c := range ps(t, h) {
			if strings.HasPrefix(c.Name, "e2esurvive-sleeper") && c.Health != "healthy" {
				return false
			}
		}
		return true
	})

	// The counters' logs: every number once, in order, across the kill.
	time.Sleep(300 * time.Millisecond)
	for _, c := range counters {
		nums := counted(t, h, c)
		if len(nums) <= linesAtKill[c] {
			t.Errorf("%s logged nothing after the agent was killed (%d lines)", c, len(nums))
		}
		for i, n := range nums {
			if n != i {
				t.Errorf("%s: line %d says %d: a gap or a duplicate", c, i, n)
				break
			}
		}
	}

	if code, out := h.run(nil, "plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan after the agent restarted: exit %d, want no changes\n%s", code, out)
	}
}

type psEntry struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Health string `json:"health"`
}

// pids are the init pids of containers, from berth inspect.
func pids(t *testing.T, h *host, list []psEntry) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, c := range list {
		pid, _ := h.inspectOne(c.Name)["pid"].(float64)
		if pid <= 0 {
			t.Fatalf("%s has no pid: %v", c.Name, h.inspectOne(c.Name))
		}
		out[c.Name] = int(pid)
	}
	return out
}

// ps lists the running containers.
func ps(t *testing.T, h *host) []psEntry {
	t.Helper()
	out, _ := h.mustVerb("ps", "--format", "json")
	var list []psEntry
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e psEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("ps: %v: %q", err, line)
		}
		list = append(list, e)
	}
	return list
}

// counted reads a counter's log as numbers.
func counted(t *testing.T, h *host, name string) []int {
	t.Helper()
	out, _ := h.mustVerb("logs", name)
	var nums []int
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		n, err := strconv.Atoi(line)
		if err != nil {
			t.Fatalf("%s logged %q", name, line)
		}
		nums = append(nums, n)
	}
	return nums
}

const driftConfig = `
image "bb" {
  rootfs = "./rootfs"
}

container "keeper" {
  image        = image.bb.ref
  command      = ["sleep", "3600"]
  stop_timeout = "1s"
}

container "healer" {
  image        = image.bb.ref
  command      = ["sleep", "3600"]
  restart      = "always"
  stop_timeout = "1s"
}

container "gone" {
  image        = image.bb.ref
  command      = ["sleep", "3600"]
  stop_timeout = "1s"
}
`

// TestAgentReportsDrift: what happens behind berth's back is reported by
// the agent on its own; it is repaired only where the configuration says
// so (a restart policy), and otherwise left for the next plan.
func TestAgentReportsDrift(t *testing.T) {
	h := newHost(t, "e2edrift")
	t.Setenv("BERTH_SOCKET", filepath.Join(os.Getenv("BERTH_RUN_DIR"), "berth.sock"))
	h.write("main.hcl", driftConfig)
	startAgent(t)
	if code, out := h.run(nil, "apply", "-auto-approve"); code != 0 {
		t.Fatalf("apply through the agent: exit %d\n%s", code, out)
	}
	running := ps(t, h)
	if len(running) != 3 {
		t.Fatalf("%d containers run, want 3: %+v", len(running), running)
	}
	pid := pids(t, h, running)
	// Killed from the host, and removed with berth rm.
	for _, name := range []string{"e2edrift-keeper", "e2edrift-healer"} {
		if err := syscall.Kill(pid[name], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	h.mustVerb("rm", "-f", "e2edrift-gone")

	drift := func(name, want string) bool {
		out, _ := h.mustVerb("events", "--since", "10m", "--until", "0s", "--format", "json", "--filter", "container="+name, "--filter", "event=drift")
		return strings.TrimSpace(out) != "" && strings.Contains(out, want)
	}
	waitFor(t, "the keeper's exit reported as drift", func() bool { return drift("e2edrift-keeper", "next berth apply starts it again") })
	waitFor(t, "the healer restarted by its policy", func() bool {
		in := h.inspectOne("e2edrift-healer")
		return in["status"] == "running" && in["restart_count"] == 1.0
	})
	if drift("e2edrift-healer", "") {
		t.Error("a container its restart policy repaired was reported as drift")
	}
	// A removal through berth is no drift (one outside berth is:
	// agent/supervise's TestRemovalThroughBerthIsNotDrift). The check of
	// removed containers runs every 2 s and needs two misses in a row:
	// three rounds of it pass before the absence counts.
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if drift("e2edrift-gone", "") {
			t.Error("berth rm was reported as drift")
			break
		}
	}
	// Not repaired: the next plan shows it.
	if in := h.inspectOne("e2edrift-keeper"); in["status"] != "exited" || in["exit_code"] != 137.0 {
		t.Errorf("the keeper: %v", in)
	}
	code, out := h.run(nil, "plan", "-detailed-exitcode")
	if code != 2 || !strings.Contains(out, "container.keeper") || !strings.Contains(out, "container.gone") || strings.Contains(out, "container.healer") {
		t.Errorf("plan after the drift: exit %d, want 2 with keeper and gone\n%s", code, out)
	}
}
