package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/agent"
	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/resource"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/verbs/NAME, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "verbs", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return now.Add(-d) }

// fixtures are containers in every state berth ps shows.
func fixtures() []agent.Container {
	digest := "hello/web@sha256:e612bec1b0c3f4d5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3"
	return []agent.Container{
		{Info: container.Info{
			Name: "hello-web", Owner: "hello/container.web", Image: digest, Command: []string{"/hello", "-listen", ":8080", "-verbose"},
			Created: ago(3 * time.Hour), Status: "running", StartedAt: ago(3 * time.Minute), Restart: "always",
			Ports: []resource.PortSpec{{Target: 8080, Published: 18080, HostIP: "127.0.0.1", Protocol: "tcp"}, {Target: 53, Published: 5353, Protocol: "udp"}},
		}, Health: "healthy"},
		{Info: container.Info{
			Name: "hello-db", Owner: "hello/container.db[0]", Image: "hello/db@sha256:abc", Command: []string{"db"},
			Created: ago(50 * time.Hour), Status: "running", StartedAt: ago(500 * time.Millisecond),
		}, Health: "starting"},
		{Info: container.Info{
			Name: "job", Image: "tools@sha256:0123456789abcdef0123", Command: []string{"sh", "-c", "exit 3"},
			Created: ago(90 * time.Second), Status: "exited", StartedAt: ago(80 * time.Second), FinishedAt: ago(2 * time.Second), ExitCode: 3,
		}},
		{Info: container.Info{
			Name: "flaky", Owner: "other/container.flaky", Image: "other/flaky", Command: []string{"flaky"},
			Created: ago(20 * 24 * time.Hour), Status: agent.StatusRestarting, StartedAt: ago(10 * time.Second), FinishedAt: ago(5 * time.Second), ExitCode: 1,
		}, Restarting: true, RestartCount: 4},
		{Info: container.Info{
			Name: "sick", Image: "sick", Command: []string{"serve"},
			Created: ago(70 * time.Minute), Status: "running", StartedAt: ago(61 * time.Minute),
		}, Health: "unhealthy"},
		{Info: container.Info{Name: "new", Image: "img", Created: ago(time.Second), Status: "created"}},
		{Info: container.Info{Name: "frozen", Image: "img", Created: ago(time.Hour), Status: "paused", StartedAt: ago(time.Hour)}},
		// A one-off container of berth run: its owner shows as (run), and
		// no note says an apply makes it again.
		{Info: container.Info{
			Name: "tidy-schooner", Owner: resource.RunProject + `/container.tidy-schooner["0758c2a1e9f04b6d"]`, Image: "alpine", Command: []string{"sleep", "60"},
			Created: ago(time.Minute), Status: "running", StartedAt: ago(time.Minute),
		}},
	}
}

func TestPSTable(t *testing.T) {
	var out bytes.Buffer
	writePS(&out, fixtures(), now, true)
	golden(t, "ps.golden", out.String())
	out.Reset()
	writePS(&out, fixtures()[:1], now, false)
	golden(t, "ps_no_trunc.golden", out.String())
}

func TestPSJSON(t *testing.T) {
	var out bytes.Buffer
	for _, c := range fixtures() {
		b, err := jsonLine(psLine(c, now))
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
	}
	golden(t, "ps_json.golden", out.String())
}

func TestStatusAndDurations(t *testing.T) {
	var out bytes.Buffer
	for _, c := range fixtures() {
		fmt.Fprintf(&out, "%-10s %s\n", c.Name, statusText(c, now))
	}
	for _, d := range []time.Duration{0, time.Second, 59 * time.Second, 90 * time.Second, 59 * time.Minute, 61 * time.Minute,
		47 * time.Hour, 72 * time.Hour, 20 * 24 * time.Hour, 100 * 24 * time.Hour, 3 * 365 * 24 * time.Hour} {
		fmt.Fprintf(&out, "%-12s %s\n", d, humanDuration(d))
	}
	golden(t, "status.golden", out.String())
}

func TestStatsTopEventsText(t *testing.T) {
	var out bytes.Buffer
	writeStats(&out, []agent.Stats{
		{Name: "hello-web", CPUPercent: 0.51234, MemoryUsage: 1597440, MemoryLimit: 64 << 20, MemoryPercent: 2.38, Pids: 3, BlockRead: 12300, BlockWrite: 0},
		{Name: "busy", CPUPercent: 199.9, MemoryUsage: 3 << 30, MemoryLimit: 7_958_179_840, MemoryPercent: 40.47, Pids: 120, BlockRead: 4_500_000_000, BlockWrite: 999},
	})
	out.WriteString("\n")
	writeTop(&out, []agent.Process{
		{PID: 4242, PPID: 4200, User: "root", CPU: 1500 * time.Millisecond, Command: "/hello -listen :8080"},
		{PID: 4250, PPID: 4242, User: "nobody", CPU: 26*time.Hour + 3*time.Minute + 7*time.Second, Command: "[sh]"},
	})
	out.WriteString("\n")
	for _, e := range []agent.Event{
		{Time: now, Type: agent.ActionStart, Container: "hello-web", Owner: "hello/container.web", Image: "hello/web@sha256:e612"},
		{Time: now.Add(time.Second), Type: agent.ActionDie, Container: "hello-web", ExitCode: 137, Signal: "SIGKILL"},
		{Time: now.Add(2 * time.Second), Type: agent.ActionStop, Container: "hello-web", ByUser: true},
		{Time: now.Add(3 * time.Second), Type: agent.ActionHealth, Container: "db", Health: "unhealthy"},
		{Time: now.Add(4 * time.Second), Type: agent.ActionDie, Container: "job"},
		{Time: now.Add(5 * time.Second), Type: agent.ActionRestart, Container: "flaky", RestartCount: 3},
		{Time: now.Add(6 * time.Second), Type: agent.ActionDrift, Container: "gone", Message: "container gone was removed outside berth"},
	} {
		out.WriteString(eventLine(e) + "\n")
	}
	out.WriteString("\n")
	for _, c := range fixtures() {
		for _, done := range []string{"stopped", "removed"} {
			if s := restoreNote(c, done); s != "" {
				out.WriteString(s + "\n")
			}
		}
	}
	golden(t, "stats_top_events.golden", out.String())
}
