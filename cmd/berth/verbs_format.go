package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/seed-e88ffcd2/berth/agent"
	"github.com/seed-e88ffcd2/berth/resource"
)

// How the imperative verbs print, as docker prints the same things: pure
// functions of the values and the time, so that golden files hold them.

// humanDuration is Docker's (go-units HumanDuration): "Less than a
// second", "1 second", "About a minute", "3 hours", "2 weeks".
func humanDuration(d time.Duration) string {
	if seconds := int(d.Seconds()); seconds < 1 {
		return "Less than a second"
	} else if seconds == 1 {
		return "1 second"
	} else if seconds < 60 {
		return fmt.Sprintf("%d seconds", seconds)
	} else if minutes := int(d.Minutes()); minutes == 1 {
		return "About a minute"
	} else if minutes < 60 {
		return fmt.Sprintf("%d minutes", minutes)
	} else if hours := int(d.Round(time.Hour).Hours()); hours == 1 {
		return "About an hour"
	} else if hours < 48 {
		return fmt.Sprintf("%d hours", hours)
	} else if hours < 24*7*2 {
		return fmt.Sprintf("%d days", hours/24)
	} else if hours < 24*30*2 {
		return fmt.Sprintf("%d weeks", hours/24/7)
	} else if hours < 24*365*2 {
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// statusText is the STATUS column of berth ps: "Up 3 minutes (healthy)",
// "Exited (3) 2 seconds ago", "Restarting (1) 5 seconds ago", "Created".
func statusText(c agent.Container, now time.Time) string {
	switch c.Status {
	case "running", "paused":
		s := "Up"
		if !c.StartedAt.IsZero() {
			s += " " + humanDuration(now.Sub(c.StartedAt))
		}
		switch {
		case c.Status == "paused":
			s += " (Paused)"
		case c.Health == "starting":
			s += " (health: starting)"
		case c.Health != "":
			s += " (" + c.Health + ")"
		}
		return s
	case "exited", agent.StatusRestarting:
		word := "Exited"
		if c.Restarting {
			word = "Restarting"
		}
		s := fmt.Sprintf("%s (%d)", word, c.ExitCode)
		if !c.FinishedAt.IsZero() {
			s += " " + humanDuration(now.Sub(c.FinishedAt)) + " ago"
		}
		return s
	}
	return "Created"
}

// portsText is the PORTS column: 127.0.0.1:8080->80/tcp, …
func portsText(c agent.Container) string {
	var out []string
	for _, p := range c.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		host := p.HostIP
		if host == "" {
			host = "0.0.0.0"
		}
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", host, p.Published, p.Target, proto))
	}
	return strings.Join(out, ", ")
}

// commandText is the COMMAND column: quoted, cut to 20 characters as
// docker ps does unless --no-trunc.
func commandText(cmd []string, trunc bool) string {
	s := strings.Join(cmd, " ")
	if trunc {
		s = ellipsis(s, 20)
	}
	return strconv.Quote(s)
}

func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// imageText shortens an image's digest to 12 hex digits, unless --no-trunc.
func imageText(image string, trunc bool) string {
	if !trunc {
		return image
	}
	if name, digest, ok := strings.Cut(image, "@sha256:"); ok && len(digest) > 12 {
		return name + "@sha256:" + digest[:12]
	}
	return image
}

// owner splits a container's owner into its project and address.
func owner(c agent.Container) (project, addr string, ok bool) {
	return strings.Cut(c.Owner, "/")
}

// ownerText is the OWNER column: PROJECT/ADDRESS, just (run) for a
// one-off container of berth run (its address holds a nonce that tells
// nobody anything), - for none.
func ownerText(c agent.Container) string {
	if project, _, _ := owner(c); project == resource.RunProject {
		return resource.RunProject
	}
	return dash(c.Owner)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
}

// writePS prints berth ps's table.
func writePS(w io.Writer, list []agent.Container, now time.Time, trunc bool) {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tOWNER")
	for _, c := range list {
		created := ""
		if !c.Created.IsZero() {
			created = humanDuration(now.Sub(c.Created)) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, imageText(c.Image, trunc), commandText(c.Command, trunc),
			created, statusText(c, now), portsText(c), ownerText(c))
	}
	tw.Flush()
}

// psJSON is one line of berth ps --format json: the columns as shown,
// and the values they come from.
type psJSON struct {
	Name      string    `json:"name"`
	Image     string    `json:"image"`
	Command   []string  `json:"command"`
	Created   time.Time `json:"created"`
	Status    string    `json:"status"` // running, exited, …
	State     string    `json:"state"`  // as the STATUS column shows it
	Health    string    `json:"health,omitempty"`
	ExitCode  int       `json:"exit_code"`
	Ports     string    `json:"ports"`
	Owner     string    `json:"owner,omitempty"`
	Project   string    `json:"project,omitempty"`
	Address   string    `json:"address,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
}

func psLine(c agent.Container, now time.Time) psJSON {
	p, a, _ := owner(c)
	cmd := c.Command
	if cmd == nil {
		cmd = []string{}
	}
	return psJSON{
		Name: c.Name, Image: c.Image, Command: cmd, Created: c.Created, Status: c.Status,
		State: statusText(c, now), Health: c.Health, ExitCode: c.ExitCode, Ports: portsText(c),
		Owner: c.Owner, Project: p, Address: a, StartedAt: c.StartedAt,
	}
}

// binarySize is go-units BytesSize: 4 significant digits, powers of 1024
// (memory, as docker stats shows it).
func binarySize(n uint64) string {
	return unitSize(float64(n), 1024, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}, "%.4g%s")
}

// decimalSize is go-units HumanSizeWithPrecision(n, 3): powers of 1000
// (block I/O).
func decimalSize(n uint64) string {
	return unitSize(float64(n), 1000, []string{"B", "kB", "MB", "GB", "TB", "PB"}, "%.3g%s")
}

func unitSize(size, base float64, units []string, format string) string {
	i := 0
	for size >= base && i < len(units)-1 {
		size /= base
		i++
	}
	return fmt.Sprintf(format, size, units[i])
}

// writeStats prints berth stats's table, one row per sample.
func writeStats(w io.Writer, samples []agent.Stats) {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tBLOCK I/O\tPIDS")
	for _, s := range samples {
		fmt.Fprintln(tw, statsRow(s))
	}
	tw.Flush()
}

func statsRow(s agent.Stats) string {
	return fmt.Sprintf("%s\t%.2f%%\t%s / %s\t%.2f%%\t%s / %s\t%d", s.Name, finite(s.CPUPercent),
		binarySize(s.MemoryUsage), binarySize(s.MemoryLimit), finite(s.MemoryPercent),
		decimalSize(s.BlockRead), decimalSize(s.BlockWrite), s.Pids)
}

func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// writeTop prints berth top's table.
func writeTop(w io.Writer, ps []agent.Process) {
	tw := newTable(w)
	fmt.Fprintln(tw, "PID\tPPID\tUSER\tTIME\tCMD")
	for _, p := range ps {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", p.PID, p.PPID, p.User, cpuTime(p.CPU), p.Command)
	}
	tw.Flush()
}

// cpuTime is ps's TIME: [DD-]HH:MM:SS.
func cpuTime(d time.Duration) string {
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	out := fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	if days > 0 {
		out = fmt.Sprintf("%d-%s", days, out)
	}
	return out
}

// timestamp is docker's fixed-width RFC 3339 time with nanoseconds.
const timestamp = "2006-01-02T15:04:05.000000000Z07:00"

// eventLine is an event as berth events prints it without --format json:
// TIME container TYPE NAME (key=value, …), as docker events does.
func eventLine(e agent.Event) string {
	var attrs []string
	if e.Type == agent.ActionDie {
		attrs = append(attrs, "exit_code="+strconv.Itoa(e.ExitCode))
	}
	for _, kv := range [][2]string{{"signal", e.Signal}, {"image", e.Image}, {"owner", e.Owner}} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0]+"="+kv[1])
		}
	}
	if e.RestartCount > 0 {
		attrs = append(attrs, "restart_count="+strconv.Itoa(e.RestartCount))
	}
	if e.ByUser {
		attrs = append(attrs, "by_user=true")
	}
	sort.Strings(attrs)
	what := string(e.Type)
	if e.Type == agent.ActionHealth && e.Health != "" {
		what += ": " + e.Health
	}
	s := e.Time.UTC().Format(timestamp) + " container " + what + " " + e.Container
	if len(attrs) > 0 {
		s += " (" + strings.Join(attrs, ", ") + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// restoreNote says what the next apply does about a verb's work on a
// container a project declares; empty for one no project owns, such as
// a one-off container of berth run (resource.RunProject), which no apply
// makes again.
func restoreNote(c agent.Container, done string) string {
	project, addr, ok := owner(c)
	if !ok || project == resource.RunProject {
		return ""
	}
	next := "the next berth apply starts it again"
	if done == "removed" {
		next = "the next berth plan shows it missing and berth apply creates it again"
	}
	return fmt.Sprintf("container %s %s; it belongs to project %s (%s): %s", c.Name, done, project, addr, next)
}
