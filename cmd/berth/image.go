package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/seed-e88ffcd2/berth/agent"
	"github.com/seed-e88ffcd2/berth/plan"
)

// imageCommands are the verbs of berth image, each working on the host's
// image store and registries without a configuration.
var imageCommands = map[string]command{
	"pull": {"fetch an image from a registry into the store (pull REF)", (*CLI).imagePull},
	"push": {"upload a stored image to a registry (push NAME REF)", (*CLI).imagePush},
}

// image dispatches berth image SUBCOMMAND.
func (c *CLI) image(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		c.imageUsage()
		return map[bool]int{true: 1, false: 0}[len(args) == 0]
	}
	sub, ok := imageCommands[args[0]]
	if !ok {
		fmt.Fprintf(c.Stderr, "berth image: unknown command %q\n\n", args[0])
		c.imageUsage()
		return 1
	}
	return sub.run(c, ctx, args[1:])
}

func (c *CLI) imageUsage() {
	fmt.Fprintln(c.Stderr, "Usage: berth image COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(imageCommands))
	for n := range imageCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(c.Stderr, "  %-6s %s\n", n, imageCommands[n].summary)
	}
	fmt.Fprintln(c.Stderr, "\nRun berth image COMMAND -h for a command's flags.")
}

func (c *CLI) imagePull(ctx context.Context, args []string) int {
	fs := c.newFlags("image pull", "[flags] REF")
	jsonOut := fs.Bool("json", false, "print progress and the result as JSON lines")
	as := fs.String("name", "", "record the image under this name (default: REF)")
	pos, ok, code := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.errorf("image pull takes one registry reference, such as registry.example.com/team/app:1.4")
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	// Ctrl-C cancels the downloads, and the pull removes what it staged.
	ctx, stop := c.interruptible(ctx)
	defer stop()
	view := c.pullView(ctx, *jsonOut)
	start := time.Now()
	pulled, err := images.Pull(ctx, pos[0], agent.PullOptions{Name: *as, Progress: view.progress})
	view.finish(err)
	if err != nil {
		if *jsonOut {
			_ = json.NewEncoder(c.Stdout).Encode(map[string]any{"type": "error", "error": err.Error()})
		}
		return c.errorf("%v", err)
	}
	if *jsonOut {
		_ = json.NewEncoder(c.Stdout).Encode(struct {
			Type string `json:"type"`
			*agent.PulledImage
			Seconds float64 `json:"seconds"`
		}{"pulled", pulled, time.Since(start).Seconds()})
		return 0
	}
	fmt.Fprintf(c.Stdout, "Pulled %s as %s\n  digest %s\n", pos[0], pulled.Name, pulled.Digest)
	if pulled.RepoDigest != pulled.Digest {
		fmt.Fprintf(c.Stdout, "  from index %s (this host's platform)\n", pulled.RepoDigest)
	}
	fmt.Fprintf(c.Stdout, "  %d of %d blobs downloaded (%s) in %s\n", pulled.Blobs-pulled.Reused, pulled.Blobs,
		plan.HumanBytes(pulled.Downloaded), time.Since(start).Round(time.Millisecond))
	return 0
}

func (c *CLI) imagePush(ctx context.Context, args []string) int {
	fs := c.newFlags("image push", "[flags] NAME REF")
	jsonOut := fs.Bool("json", false, "print progress and the result as JSON lines")
	pos, ok, code := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		return c.errorf("image push takes a stored image (its name, NAME@DIGEST or a digest) and a registry reference, such as: berth image push hello/web registry.example.com/team/web:1")
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	view := c.pullView(ctx, *jsonOut)
	start := time.Now()
	digest, err := images.Push(ctx, pos[0], pos[1], view.progress)
	view.finish(err)
	if err != nil {
		if *jsonOut {
			_ = json.NewEncoder(c.Stdout).Encode(map[string]any{"type": "error", "error": err.Error()})
		}
		return c.errorf("%v", err)
	}
	if *jsonOut {
		_ = json.NewEncoder(c.Stdout).Encode(map[string]any{"type": "pushed", "ref": pos[1], "digest": digest, "seconds": time.Since(start).Seconds()})
		return 0
	}
	fmt.Fprintf(c.Stdout, "Pushed %s to %s\n  digest %s (pull it as %s@%s)\n", pos[0], pos[1], digest, strings.SplitN(pos[1], "@", 2)[0], digest)
	return 0
}

// transferView shows the progress of a pull or push: bars updated in place
// on a terminal (mpb), a line per blob started and finished otherwise, and
// JSON lines with -json.
type transferView struct {
	progress func(agent.ImageProgress)
	finish   func(err error)
}

func (c *CLI) pullView(ctx context.Context, jsonOut bool) transferView {
	switch {
	case jsonOut:
		var mu sync.Mutex
		enc := json.NewEncoder(c.Stdout)
		return transferView{
			progress: func(p agent.ImageProgress) {
				mu.Lock()
				defer mu.Unlock()
				_ = enc.Encode(struct {
					Type string `json:"type"`
					agent.ImageProgress
				}{"progress", p})
			},
			finish: func(error) {},
		}
	case writesToTerminal(c.Stdout):
		return barsView(ctx, c.Stdout)
	}
	return linesView(c.Stdout)
}

func writesToTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12] + "…"
	}
	return d
}

// linesView writes a line when a blob starts and when it ends, for logs
// and pipes.
func linesView(w io.Writer) transferView {
	var mu sync.Mutex
	started := map[string]time.Time{}
	lastPush, pushed := time.Time{}, int64(-1)
	return transferView{
		progress: func(p agent.ImageProgress) {
			mu.Lock()
			defer mu.Unlock()
			what := strings.TrimSpace(p.Kind + " " + shortDigest(p.Digest))
			switch p.State {
			case agent.BlobExists:
				fmt.Fprintf(w, "%s already stored\n", what)
			case agent.BlobDownloading:
				if _, ok := started[p.Digest]; !ok {
					started[p.Digest] = time.Now()
					fmt.Fprintf(w, "pulling %s %s\n", what, plan.HumanBytes(p.Size))
				}
			case agent.BlobDone:
				fmt.Fprintf(w, "pulled %s in %s\n", what, time.Since(started[p.Digest]).Round(time.Millisecond))
			case agent.BlobFailed:
				fmt.Fprintf(w, "failed %s after %s of %s\n", what, plan.HumanBytes(p.Done), plan.HumanBytes(p.Size))
			case agent.BlobPushing:
				// One line every few seconds: a push reports its bytes as a
				// whole.
				if now := time.Now(); p.Done != pushed && (now.Sub(lastPush) >= 2*time.Second || p.Done == p.Size) {
					lastPush, pushed = now, p.Done
					fmt.Fprintf(w, "pushed %s of %s\n", plan.HumanBytes(p.Done), plan.HumanBytes(p.Size))
				}
			}
		},
		finish: func(error) {},
	}
}

// barsView draws a bar per blob, updated in place, with mpb.
func barsView(ctx context.Context, w io.Writer) transferView {
	p := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond))
	var mu sync.Mutex
	bars := map[string]*mpb.Bar{}
	bar := func(pr agent.ImageProgress) *mpb.Bar {
		if b := bars[pr.Digest]; b != nil {
			return b
		}
		name := strings.TrimSpace(pr.Kind + " " + shortDigest(pr.Digest))
		done := plan.HumanBytes(pr.Size) + " pulled"
		switch {
		case pr.State == agent.BlobExists:
			done = "already stored"
		case pr.State == agent.BlobPushing:
			done = plan.HumanBytes(pr.Size) + " pushed"
		}
		b := p.AddBar(max(pr.Size, 1),
			mpb.PrependDecorators(decor.Name(name, decor.WC{C: decor.DindentRight | decor.DextraSpace})),
			mpb.AppendDecorators(decor.OnAbort(decor.OnComplete(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"), done), "failed")),
		)
		bars[pr.Digest] = b
		return b
	}
	return transferView{
		progress: func(pr agent.ImageProgress) {
			mu.Lock()
			defer mu.Unlock()
			b := bar(pr)
			switch pr.State {
			case agent.BlobExists, agent.BlobDone:
				b.SetCurrent(max(pr.Size, 1))
			case agent.BlobDownloading, agent.BlobPushing:
				if pr.Size > 0 {
					b.SetTotal(pr.Size, false)
				}
				b.SetCurrent(pr.Done)
				if pr.State == agent.BlobPushing && pr.Done == pr.Size && pr.Size > 0 {
					b.SetTotal(pr.Size, true)
				}
			case agent.BlobFailed:
				b.Abort(false)
			}
		},
		finish: func(err error) {
			mu.Lock()
			for _, b := range bars {
				if !b.Completed() {
					if err != nil {
						b.Abort(false)
					} else {
						b.SetTotal(-1, true)
					}
				}
			}
			mu.Unlock()
			p.Wait()
		},
	}
}
