package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/seed-e88ffcd2/berth/agent"
)

func init() {
	commands["build"] = command{"build an image from a Dockerfile (build -t NAME[:TAG] DIR)", (*CLI).build}
}

// build is berth build: docker build's flags, berth's builder.
func (c *CLI) build(ctx context.Context, args []string) int {
	fs := c.verbFlags("build", "[flags] DIR")
	tags := fs.StringArrayP("tag", "t", nil, "name the image NAME[:TAG] (repeatable)")
	file := fs.StringP("file", "f", "", "the Dockerfile (default DIR/Dockerfile)")
	buildArgs := fs.StringArray("build-arg", nil, "set a build argument KEY=VALUE (KEY alone: from the environment); repeatable")
	target := fs.String("target", "", "build this stage (default the last)")
	network := fs.String("network", "none", "network of RUN steps: none or host")
	noCache := fs.Bool("no-cache", false, "run every step (the results still enter the cache)")
	progress := fs.String("progress", "auto", "progress output: auto, tty, plain or json")
	jsonOut := fs.Bool("json", false, "print progress and the result as JSON lines (as --progress json)")
	quiet := fs.BoolP("quiet", "q", false, "print only the image ID")
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.errorf("build takes one build context directory, such as: berth build -t app:1 .")
	}
	dir, err := c.abs(pos[0])
	if err != nil {
		return c.errorf("%v", err)
	}
	dockerfile := ""
	if *file != "" {
		// As docker build: -f is relative to the working directory.
		if dockerfile, err = c.abs(*file); err != nil {
			return c.errorf("%v", err)
		}
	}
	argMap := map[string]string{}
	for _, a := range *buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			v, ok = lookupEnv(c.environ(), k)
			if !ok {
				continue // as docker: an unset variable passes nothing
			}
		}
		argMap[k] = v
	}
	if *jsonOut {
		*progress = "json"
	}
	if *progress == "auto" {
		*progress = "plain"
		if writesToTerminal(c.Stdout) {
			*progress = "tty"
		}
	}
	var view buildView
	switch {
	case *quiet:
		view = &quietView{}
	case *progress == "json":
		view = &jsonBuildView{c: c}
	case *progress == "tty":
		view = newTTYView(c.Stdout)
	case *progress == "plain":
		view = &plainView{w: c.Stdout}
	default:
		return c.errorf("--progress %q: use auto, tty, plain or json", *progress)
	}
	h, release, err := c.openHost()
	if err != nil {
		return c.errorf("%v", err)
	}
	defer func() { _ = release() }()
	ctx, stop := c.interruptible(ctx)
	defer stop()
	res, err := h.Build(ctx, agent.BuildOptions{
		Context: dir, Dockerfile: dockerfile, Args: argMap, Target: *target, Network: *network,
		Tags: *tags, NoCache: *noCache, Progress: view.event,
	})
	view.finish(err)
	if err != nil {
		if *progress == "json" {
			_ = c.writeJSONLine(map[string]string{"type": "error", "error": err.Error()})
		}
		return c.errorf("%v", err)
	}
	switch {
	case *quiet:
		fmt.Fprintln(c.Stdout, res.ID)
	case *progress == "json":
		_ = c.writeJSONLine(struct {
			Type string `json:"type"`
			*agent.BuildResult
		}{"result", res})
	default:
		fmt.Fprintf(c.Stdout, "Successfully built %s (%d steps, %d from the cache, %s)\n", shortDigest(res.ID.String()), res.Steps, res.Cached, res.Duration.Round(time.Millisecond))
		fmt.Fprintf(c.Stdout, "  digest %s\n", res.Digest)
		for _, t := range res.Tags {
			fmt.Fprintf(c.Stdout, "Successfully tagged %s\n", t)
		}
	}
	return 0
}

// buildView shows a build's progress.
type buildView interface {
	event(agent.BuildEvent)
	finish(error)
}

type quietView struct{}

func (quietView) event(agent.BuildEvent) {}
func (quietView) finish(error)           {}

// jsonBuildView writes each event as a JSON line.
type jsonBuildView struct {
	c  *CLI
	mu sync.Mutex
}

func (v *jsonBuildView) event(e agent.BuildEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	_ = v.c.writeJSONLine(struct {
		Type string `json:"type"`
		agent.BuildEvent
	}{"build", e})
}

func (v *jsonBuildView) finish(error) {}

// oneLine is an instruction on one line, for progress.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\\\n", " ")), " ")
}

// plainView writes docker build's classic lines, for pipes and logs:
// "Step 3/7 : RUN …", the step's output, " ---> Using cache", " ---> ID".
type plainView struct {
	w  io.Writer
	mu sync.Mutex
}

func (v *plainView) event(e agent.BuildEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch e.Kind {
	case agent.BuildStep:
		fmt.Fprintf(v.w, "Step %d/%d : %s\n", e.Step, e.Steps, oneLine(e.Instruction))
	case agent.BuildCached:
		fmt.Fprintf(v.w, " ---> Using cache\n ---> %s\n", shortDigest(e.Image))
	case agent.BuildDone:
		if e.Duration > 0 {
			fmt.Fprintf(v.w, " ---> %s (%s)\n", shortDigest(e.Image), e.Duration.Round(time.Millisecond))
		} else {
			fmt.Fprintf(v.w, " ---> %s\n", shortDigest(e.Image))
		}
	case agent.BuildOutput:
		fmt.Fprintln(v.w, e.Output)
	case agent.BuildWarning:
		fmt.Fprintf(v.w, "[warning] %s\n", e.Output)
	}
}

func (v *plainView) finish(error) {}

// ttyView keeps one line per step, updated in place with its elapsed
// time while it runs; the output of RUN steps scrolls above it.
type ttyView struct {
	w      io.Writer
	width  int
	mu     sync.Mutex
	cur    *agent.BuildEvent
	start  time.Time
	stop   chan struct{}
	done   sync.WaitGroup
	status string
}

func newTTYView(w io.Writer) *ttyView {
	v := &ttyView{w: w, width: 100, stop: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
			v.width = cols
		}
	}
	v.done.Add(1)
	go func() {
		defer v.done.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-v.stop:
				return
			case <-t.C:
				v.mu.Lock()
				v.redraw()
				v.mu.Unlock()
			}
		}
	}()
	return v
}

// line is the status line of the current step.
func (v *ttyView) line(state string) string {
	e := v.cur
	s := fmt.Sprintf("[%d/%d] %s", e.Step, e.Steps, oneLine(e.Instruction))
	if max := v.width - len(state) - 2; len(s) > max && max > 10 {
		s = s[:max-1] + "…"
	}
	return s + "  " + state
}

func (v *ttyView) redraw() {
	if v.cur == nil {
		return
	}
	v.status = v.line(fmt.Sprintf("%.1fs", time.Since(v.start).Seconds()))
	fmt.Fprintf(v.w, "\r\x1b[K%s", v.status)
}

// end finishes the current step's line with its final state.
func (v *ttyView) end(state string) {
	if v.cur == nil {
		return
	}
	fmt.Fprintf(v.w, "\r\x1b[K%s\n", v.line(state))
	v.cur = nil
}

func (v *ttyView) event(e agent.BuildEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch e.Kind {
	case agent.BuildStep:
		v.end("")
		ev := e
		v.cur, v.start = &ev, time.Now()
		v.redraw()
	case agent.BuildCached:
		v.end("CACHED")
	case agent.BuildDone:
		v.end(fmt.Sprintf("DONE %.1fs", time.Since(v.start).Seconds()))
	case agent.BuildOutput, agent.BuildWarning:
		prefix := ""
		if e.Kind == agent.BuildWarning {
			prefix = "[warning] "
		}
		fmt.Fprintf(v.w, "\r\x1b[K%s%s\n", prefix, e.Output)
		v.redraw()
	}
}

func (v *ttyView) finish(err error) {
	close(v.stop)
	v.done.Wait()
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.end("ERROR")
	} else {
		v.end("")
	}
}
