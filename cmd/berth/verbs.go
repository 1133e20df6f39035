package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seed-e88ffcd2/berth/agent"
	"github.com/seed-e88ffcd2/berth/agent/api"
	"github.com/seed-e88ffcd2/berth/dsl"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/spf13/pflag"
)

// The imperative verbs: berth ps, inspect, start, stop, restart, kill, rm,
// top, stats, events and logs act on containers by name, as docker's do.
// Each goes through an agent.Runtime: the agent's API when an agent
// answers, this process's own host otherwise; the code here is the same
// for both. What they do to a container a project declares, that
// project's next apply undoes, and they say so.

func init() {
	for name, cmd := range map[string]command{
		"ps":      {"list containers (-a: also stopped ones)", (*CLI).ps},
		"inspect": {"describe containers as JSON", (*CLI).inspect},
		"start":   {"start stopped containers", (*CLI).start},
		"stop":    {"stop running containers", (*CLI).stop},
		"restart": {"stop and start containers", (*CLI).restart},
		"kill":    {"send a signal to containers (default SIGKILL)", (*CLI).kill},
		"rm":      {"remove containers (-f: also running ones)", (*CLI).rm},
		"top":     {"list a container's processes", (*CLI).top},
		"stats":   {"show containers' CPU, memory, block I/O and pids", (*CLI).stats},
		"events":  {"report what happens to containers", (*CLI).events},
		"logs":    {"print a container's output (by name, or container.NAME of the project)", (*CLI).logs},
	} {
		commands[name] = cmd
	}
}

// runtime is what the verbs act on: in an agent's session, the agent's
// own host; else the agent's API when one answers; else this process's
// host (which holds the agent lock shared until done).
func (c *CLI) runtime() (agent.Runtime, func(), error) {
	if c.OpenHost == nil {
		client, err := api.Dial(agent.DefaultConfig().Socket)
		if err == nil {
			return agent.NewClientRuntime(client), client.Close, nil
		}
		if !errors.Is(err, api.ErrNoAgent) {
			return nil, nil, err
		}
	}
	h, release, err := c.openHost()
	if err != nil {
		return nil, nil, err
	}
	return h.Runtime(), func() { _ = release() }, nil
}

// verbFlags is a flag set that parses as docker's verbs do: --long and
// -s flags, combined shorthands (-af), flags before or after the names.
func (c *CLI) verbFlags(name, usage string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "Usage: berth %s %s\n\nFlags:\n%s", name, usage, fs.FlagUsages())
	}
	return fs
}

// parseVerb parses args; ok false ends the command with code. A long
// flag written with one dash, as berth's other commands take them
// (-json, -dir), is read as the long flag.
func (c *CLI) parseVerb(fs *pflag.FlagSet, args []string) (pos []string, code int, ok bool) {
	norm := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			norm = append(norm, args[i:]...)
			break
		}
		if name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "="); strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(name) > 1 && fs.Lookup(name) != nil {
			a = "-" + a
		}
		norm = append(norm, a)
	}
	err := fs.Parse(norm)
	if errors.Is(err, pflag.ErrHelp) {
		return nil, 0, false
	}
	if err != nil {
		return nil, c.errorf("%v (berth %s --help lists the flags)", err, fs.Name()), false
	}
	return fs.Args(), 0, true
}

// formatFlag adds --format (table or json) and --json to fs.
func formatFlag(fs *pflag.FlagSet) func() (jsonOut bool, err error) {
	format := fs.String("format", "table", "output format: table or json")
	jsonFlag := fs.Bool("json", false, "print JSON (as --format json)")
	return func() (bool, error) {
		switch *format {
		case "json":
			return true, nil
		case "table", "":
			return *jsonFlag, nil
		}
		return false, fmt.Errorf("--format %q: use table or json", *format)
	}
}

// withRuntime opens the runtime for a verb, or prints why it cannot.
func (c *CLI) withRuntime(fn func(rt agent.Runtime) int) int {
	rt, release, err := c.runtime()
	if err != nil {
		return c.errorf("%v", err)
	}
	defer release()
	return fn(rt)
}

// interruptible is ctx, cancelled by the first SIGINT or SIGTERM: a
// follow, a stream of stats or events ends there, and the verb exits 0.
func (c *CLI) interruptible(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	sigs, unsubscribe := c.signals()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { unsubscribe(); cancel() }
}

// writeJSONLine prints v as one line of JSON (with <, > and & as they
// are: ports read 127.0.0.1:80->8080/tcp).
func (c *CLI) writeJSONLine(v any) error {
	b, err := jsonLine(v)
	if err != nil {
		return err
	}
	_, err = c.Stdout.Write(b)
	return err
}

func jsonLine(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (c *CLI) ps(ctx context.Context, args []string) int {
	fs := c.verbFlags("ps", "[-a] [-q] [--format table|json] [--no-trunc]")
	all := fs.BoolP("all", "a", false, "show every container (default: running ones)")
	quiet := fs.BoolP("quiet", "q", false, "print names only")
	noTrunc := fs.Bool("no-trunc", false, "do not shorten commands and image digests")
	jsonOut := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.errorf("ps takes no arguments, but was given %s", strings.Join(pos, " "))
	}
	asJSON, err := jsonOut()
	if err != nil {
		return c.errorf("%v", err)
	}
	return c.withRuntime(func(rt agent.Runtime) int {
		list, err := rt.List(ctx, *all)
		if err != nil {
			return c.errorf("%v", err)
		}
		now := time.Now()
		switch {
		case *quiet:
			for _, ct := range list {
				fmt.Fprintln(c.Stdout, ct.Name)
			}
		case asJSON:
			for _, ct := range list {
				if err := c.writeJSONLine(psLine(ct, now)); err != nil {
					return c.errorf("%v", err)
				}
			}
		default:
			writePS(c.Stdout, list, now, !*noTrunc)
		}
		return 0
	})
}

func (c *CLI) inspect(ctx context.Context, args []string) int {
	fs := c.verbFlags("inspect", "NAME...")
	jsonOut := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if _, err := jsonOut(); err != nil {
		return c.errorf("%v", err)
	}
	if len(pos) == 0 {
		return c.errorf("inspect needs at least one container name (berth ps -a lists them)")
	}
	return c.withRuntime(func(rt agent.Runtime) int {
		out := []agent.Container{}
		failed := false
		for _, name := range pos {
			ct, err := rt.Inspect(ctx, name)
			if err != nil {
				c.errorf("%v", err)
				failed = true
				continue
			}
			out = append(out, ct)
		}
		// Like docker inspect: an array, even of one, even when some
		// names were not found.
		c.printJSON(out)
		if failed {
			return 1
		}
		return 0
	})
}

// eachName runs a verb on every name, printing what it returns (the name,
// or its JSON with --json) and the note on what the next apply does;
// a failure is reported and the others still run.
func (c *CLI) eachName(ctx context.Context, verb string, names []string, asJSON bool, do func(rt agent.Runtime, name string) (agent.Container, error), note func(agent.Container) string) int {
	if len(names) == 0 {
		return c.errorf("%s needs at least one container name (berth ps -a lists them)", verb)
	}
	return c.withRuntime(func(rt agent.Runtime) int {
		code := 0
		for _, name := range names {
			ct, err := do(rt, name)
			if err != nil {
				code = c.errorf("%v", err)
				continue
			}
			if asJSON {
				if err := c.writeJSONLine(ct); err != nil {
					return c.errorf("%v", err)
				}
			} else {
				fmt.Fprintln(c.Stdout, ct.Name)
			}
			if note != nil {
				if s := note(ct); s != "" {
					fmt.Fprintln(c.Stderr, s)
				}
			}
		}
		return code
	})
}

func (c *CLI) start(ctx context.Context, args []string) int {
	fs := c.verbFlags("start", "NAME...")
	jsonOut := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	asJSON, err := jsonOut()
	if err != nil {
		return c.errorf("%v", err)
	}
	return c.eachName(ctx, "start", pos, asJSON, func(rt agent.Runtime, name string) (agent.Container, error) {
		return startVerb(ctx, rt, name)
	}, nil)
}

// startVerb starts a container for berth start. One already running is
// no failure: like docker start, the verb prints its name and exits 0
// (the Runtime's Start still answers a conflict, which the API keeps).
func startVerb(ctx context.Context, rt agent.Runtime, name string) (agent.Container, error) {
	ct, err := rt.Start(ctx, name)
	if errors.Is(err, resource.ErrConflict) {
		if in, ierr := rt.Inspect(ctx, name); ierr == nil && in.Status == "running" {
			return in, nil
		}
	}
	return ct, err
}

// timeoutFlag is stop's and restart's -t: seconds, or a duration.
func timeoutFlag(fs *pflag.FlagSet) func() (time.Duration, error) {
	t := fs.StringP("time", "t", "", "seconds to wait for the stop signal before SIGKILL (default: the container's stop_timeout)")
	return func() (time.Duration, error) {
		if *t == "" {
			return -1, nil
		}
		d, err := agent.ParseTimeout(*t)
		if err != nil {
			return 0, fmt.Errorf("-t: %v", err)
		}
		return d, nil
	}
}

func (c *CLI) stop(ctx context.Context, args []string) int {
	return c.timedVerb(ctx, "stop", args, func(rt agent.Runtime, name string, t time.Duration) (agent.Container, error) {
		return rt.Stop(ctx, name, t)
	}, func(ct agent.Container) string { return restoreNote(ct, "stopped") })
}

func (c *CLI) restart(ctx context.Context, args []string) int {
	return c.timedVerb(ctx, "restart", args, func(rt agent.Runtime, name string, t time.Duration) (agent.Container, error) {
		return rt.Restart(ctx, name, t)
	}, nil)
}

// timedVerb is stop and restart: -t SECONDS, --format, then do on each
// name.
func (c *CLI) timedVerb(ctx context.Context, verb string, args []string, do func(agent.Runtime, string, time.Duration) (agent.Container, error), note func(agent.Container) string) int {
	fs := c.verbFlags(verb, "[-t SECONDS] NAME...")
	timeout := timeoutFlag(fs)
	jsonOut := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	t, err := timeout()
	if err != nil {
		return c.errorf("%v", err)
	}
	asJSON, err := jsonOut()
	if err != nil {
		return c.errorf("%v", err)
	}
	return c.eachName(ctx, verb, pos, asJSON, func(rt agent.Runtime, name string) (agent.Container, error) {
		return do(rt, name, t)
	}, note)
}

func (c *CLI) kill(ctx context.Context, args []string) int {
	fs := c.verbFlags("kill", "[-s SIGNAL] NAME...")
	signal := fs.StringP("signal", "s", "KILL", "signal to send: a name (KILL, TERM, HUP, …) or a number")
	jsonOut := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if _, err := agent.ParseSignal(*signal); err != nil {
		return c.errorf("-s: %v", err)
	}
	asJSON, err := jsonOut()
	if err != nil {
		return c.errorf("%v", err)
	}
	return c.eachName(ctx, "kill", pos, asJSON, func(rt agent.Runtime, name string) (agent.Container, error) {
		return rt.Kill(ctx, name, *signal)
	}, func(ct agent.Container) string {
		if sig, _ := agent.ParseSignal(*signal); ct.Status == "running" && sig != syscall.SIGKILL {
			return "" // a signal it may survive (HUP, USR1)
		}
		return restoreNote(ct, "killed")
	})
}

func (c *CLI) rm(ctx context.Context, args []string) int {
	fs := c.verbFlags("rm", "[-f] NAME...")
	force := fs.BoolP("force", "f", false, "remove running containers too (killed first)")
	jsonOut := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	asJSON, err := jsonOut()
	if err != nil {
		return c.errorf("%v", err)
	}
	return c.eachName(ctx, "rm", pos, asJSON, func(rt agent.Runtime, name string) (agent.Container, error) {
		return rt.Remove(ctx, name, *force)
	}, func(ct agent.Container) string { return restoreNote(ct, "removed") })
}

func (c *CLI) top(ctx context.Context, args []string) int {
	fs := c.verbFlags("top", "NAME")
	jsonOut := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	asJSON, err := jsonOut()
	if err != nil {
		return c.errorf("%v", err)
	}
	if len(pos) != 1 {
		return c.errorf("top takes one container name")
	}
	return c.withRuntime(func(rt agent.Runtime) int {
		ps, err := rt.Top(ctx, pos[0])
		if err != nil {
			return c.errorf("%v", err)
		}
		if asJSON {
			return c.printJSON(ps)
		}
		writeTop(c.Stdout, ps)
		return 0
	})
}

func (c *CLI) stats(ctx context.Context, args []string) int {
	fs := c.verbFlags("stats", "[--no-stream] [--format table|json] [NAME...]")
	noStream := fs.Bool("no-stream", false, "print one sample of each and exit")
	jsonOut := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	asJSON, err := jsonOut()
	if err != nil {
		return c.errorf("%v", err)
	}
	ctx, stop := c.interruptible(ctx)
	defer stop()
	return c.withRuntime(func(rt agent.Runtime) int {
		names := pos
		if len(names) == 0 {
			list, err := rt.List(ctx, false)
			if err != nil {
				return c.errorf("%v", err)
			}
			for _, ct := range list {
				names = append(names, ct.Name)
			}
		}
		return c.showStats(ctx, rt, names, !*noStream, asJSON)
	})
}

// showStats samples each container in its own stream. Without streaming
// it prints one table of one sample each; streaming to a terminal it
// redraws the table every second; streaming elsewhere (or as JSON) it
// prints each sample as a line as it comes.
func (c *CLI) showStats(ctx context.Context, rt agent.Runtime, names []string, stream, asJSON bool) int {
	type result struct {
		s   agent.Stats
		err error
	}
	results := make(chan result)
	var wg sync.WaitGroup
	code := 0
	for _, name := range names {
		st, err := rt.Stats(ctx, name, stream)
		if err != nil {
			code = c.errorf("%v", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer st.Close()
			for {
				s, err := st.Next()
				if errors.Is(err, io.EOF) || ctx.Err() != nil {
					return
				}
				select {
				case results <- result{s: s, err: err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	redraw := stream && !asJSON && writesToTerminal(c.Stdout)
	latest := map[string]agent.Stats{}
	var tick <-chan time.Time
	if redraw {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	header := false
	draw := func() {
		rows := make([]agent.Stats, 0, len(latest))
		for _, s := range latest {
			rows = append(rows, s)
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
		if redraw {
			fmt.Fprint(c.Stdout, "\x1b[H\x1b[2J") // home, clear
		}
		writeStats(c.Stdout, rows)
	}
	for {
		select {
		case r, ok := <-results:
			if !ok {
				if !stream && !asJSON {
					draw()
				}
				return code
			}
			if r.err != nil {
				code = c.errorf("%v", r.err)
				continue
			}
			switch {
			case asJSON:
				if err := c.writeJSONLine(r.s); err != nil {
					return code
				}
			case !stream || redraw:
				latest[r.s.Name] = r.s
			default:
				// A pipe: one line a sample, under one header.
				if !header {
					fmt.Fprintln(c.Stdout, "NAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tBLOCK I/O\tPIDS")
					header = true
				}
				fmt.Fprintln(c.Stdout, statsRow(r.s))
			}
		case <-tick:
			draw()
		}
	}
}

func (c *CLI) events(ctx context.Context, args []string) int {
	fs := c.verbFlags("events", "[--since TIME] [--until TIME] [--filter container=NAME] [--filter event=die] [--format table|json]")
	since := fs.String("since", "", "start with the events since TIME (RFC 3339, Unix seconds, or a duration before now such as 10m)")
	until := fs.String("until", "", "stop at TIME (same forms); default: follow until Ctrl-C")
	filters := fs.StringArrayP("filter", "f", nil, "container=NAME, or event=ACTION (type=ACTION also), repeatable")
	jsonOut := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.errorf("events takes no arguments (filter with --filter container=NAME), but was given %s", strings.Join(pos, " "))
	}
	asJSON, err := jsonOut()
	if err != nil {
		return c.errorf("%v", err)
	}
	now := time.Now()
	var o agent.EventOptions
	if *since != "" {
		if o.Since, err = agent.ParseTime(*since, now); err != nil {
			return c.errorf("--since: %v", err)
		}
	}
	if *until != "" {
		if o.Until, err = agent.ParseTime(*until, now); err != nil {
			return c.errorf("--until: %v", err)
		}
	}
	for _, f := range *filters {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case ok && k == "container" && v != "":
			o.Names = append(o.Names, v)
		case ok && (k == "event" || k == "type" || k == "action") && v != "":
			if k == "type" && v == "container" {
				continue // every event is a container's
			}
			if !slices.Contains(agent.EventActions, v) {
				return c.errorf("--filter %s: %q is not an event type; use one of %s", f, v, strings.Join(agent.EventActions, ", "))
			}
			o.Actions = append(o.Actions, v)
		default:
			return c.errorf("--filter %q: use container=NAME or event=TYPE (%s)", f, strings.Join(agent.EventActions, ", "))
		}
	}
	ctx, stop := c.interruptible(ctx)
	defer stop()
	return c.withRuntime(func(rt agent.Runtime) int {
		st, err := rt.Events(ctx, o)
		if err != nil {
			return c.errorf("%v", err)
		}
		return printStream(ctx, c, st, func(e agent.Event) error {
			if asJSON {
				return c.writeJSONLine(e)
			}
			_, err := fmt.Fprintln(c.Stdout, eventLine(e))
			return err
		})
	})
}

// printStream prints each item of st until it ends, ctx ends (Ctrl-C:
// exit 0) or the reader goes away (a closed pipe: exit 0 as well).
func printStream[T any](ctx context.Context, c *CLI, st agent.Stream[T], print func(T) error) int {
	defer st.Close()
	for {
		e, err := st.Next()
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			return 0
		}
		if err != nil {
			return c.errorf("%v", err)
		}
		if print(e) != nil {
			return 0
		}
	}
}

// logs is berth logs NAME, or berth logs container.NAME for the
// container a project's block made.
func (c *CLI) logs(ctx context.Context, args []string) int {
	fs := c.verbFlags("logs", "[-f] [--tail N|all] [--since TIME] [-t] NAME | container.ADDRESS")
	follow := fs.BoolP("follow", "f", false, "keep printing what the container writes, until it exits or Ctrl-C")
	tail := fs.StringP("tail", "n", "all", "print the last N lines only")
	since := fs.String("since", "", "print lines since TIME (RFC 3339, Unix seconds, or a duration before now such as 10m)")
	timestamps := fs.BoolP("timestamps", "t", false, "prefix each line with its time")
	dir := fs.String("dir", ".", "configuration directory, whose project a container.ADDRESS belongs to")
	project := fs.String("project", "", "project of a container.ADDRESS (default: the directory's name)")
	fs.Bool("no-color", false, "no colours (logs prints none)")
	jsonOut := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.errorf("logs takes one container: its name, or container.NAME of this directory's project")
	}
	asJSON, err := jsonOut()
	if err != nil {
		return c.errorf("%v", err)
	}
	o := agent.LogOptions{Follow: *follow, Timestamps: *timestamps || asJSON}
	if o.Tail, err = agent.ParseTail(*tail); err != nil {
		return c.errorf("--tail: %v", err)
	}
	if *since != "" {
		if o.Since, err = agent.ParseTime(*since, time.Now()); err != nil {
			return c.errorf("--since: %v", err)
		}
	}
	ctx, stop := c.interruptible(ctx)
	defer stop()
	return c.withRuntime(func(rt agent.Runtime) int {
		name, err := c.containerName(ctx, rt, pos[0], *dir, *project)
		if err != nil {
			return c.errorf("%v", err)
		}
		st, err := rt.Logs(ctx, name, o)
		if err != nil {
			return c.errorf("%v", err)
		}
		return printStream(ctx, c, st, func(e agent.LogEntry) error {
			if asJSON {
				return c.writeJSONLine(e)
			}
			w := c.Stdout
			if e.Stream == "stderr" {
				w = c.Stderr
			}
			line := e.Log
			if *timestamps {
				line = e.Time.UTC().Format(timestamp) + " " + line
			}
			_, err := io.WriteString(w, line)
			return err
		})
	})
}

// containerName reads a container argument: a name, or an address such
// as container.web, which names the container the project's block made
// (the project of dir, or project).
func (c *CLI) containerName(ctx context.Context, rt agent.Runtime, arg, dir, project string) (string, error) {
	a, err := resource.ParseAddr(arg)
	if err != nil || a.Kind != resource.KindContainer {
		return arg, nil
	}
	if project == "" {
		abs, err := c.abs(dir)
		if err != nil {
			return "", err
		}
		project = dsl.ProjectName(abs)
	}
	list, err := rt.List(ctx, true)
	if err != nil {
		return "", err
	}
	want := project + "/" + a.String()
	for _, ct := range list {
		if ct.Owner == want {
			return ct.Name, nil
		}
	}
	for _, ct := range list {
		if ct.Name == arg {
			return arg, nil // a container named like an address
		}
	}
	return "", resource.Errorf(resource.ErrNotFound, "project %s has no container %s on this host (berth state list shows what it recorded; berth ps -a lists the containers)", project, a)
}
