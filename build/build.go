// Package build builds OCI images from Dockerfiles into berth's image
// store: `berth build` and an image's build block.
//
// The Dockerfile is read by BuildKit's own parser
// (github.com/moby/buildkit/frontend/dockerfile/parser and instructions),
// so its syntax, escapes, heredoc detection, variable expansion (shell.Lex)
// and error messages are Docker's; berth executes the instructions itself:
//
//   - FROM takes a stored image (by name or digest), an earlier stage, or
//     scratch; an image not in the store is pulled.
//   - RUN runs in a one-shot berth container (driver/container.RunOneShot):
//     the same namespaces, capabilities, seccomp profile and cgroups as any
//     container, over the image's layers and a fresh upper directory whose
//     changes become the step's layer (image.Store.PutDiff).
//   - COPY and ADD write into an overlay of the image's layers the same way,
//     from the context (minus .dockerignore) or another stage.
//   - The other instructions change the image config.
//
// Every step's result is an image in the store, and the build cache maps a
// key — the parent image's digest, the instruction after ARG and ENV
// substitution, the values of the build arguments it sees, and the content
// of its inputs — to it. An unchanged rebuild looks every step up and runs
// nothing; with Options.CacheOnly (plan time) a step that would run is
// ErrNotCached instead.
//
// The agent wires it to the image store (as its image.Builder) and the
// container driver. It imports resource and the drivers.
package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/driver/image"
	"github.com/seed-e88ffcd2/berth/resource"
)

// Runner runs a build's RUN steps; *container.Driver is one.
type Runner interface {
	RunOneShot(ctx context.Context, o container.OneShot) (int, error)
}

// Builder builds images into one store.
type Builder struct {
	store  *image.Store
	runner Runner
}

var _ image.Builder = (*Builder)(nil)

// New returns a builder writing into store and running RUN steps with
// runner.
func New(store *image.Store, runner Runner) *Builder {
	return &Builder{store: store, runner: runner}
}

// Options describe one build.
type Options struct {
	// Context is the build context directory.
	Context string
	// Dockerfile is the Dockerfile's path, relative to Context unless
	// absolute; default Context/Dockerfile.
	Dockerfile string
	// Args are the build arguments (--build-arg), for ARG instructions.
	Args map[string]string
	// Target is the stage to build; default the last.
	Target string
	// Network is the RUN steps' network: "none" (default) or "host". A
	// RUN --network=... flag overrides it for its step.
	Network string
	// Tags are the names to record the result under (NAME or NAME:TAG).
	Tags []string
	// NoCache runs every step; the results still enter the cache.
	NoCache bool
	// CacheOnly runs nothing: a step not in the cache fails the build
	// with image.ErrNotCached. Nothing is pulled either.
	CacheOnly bool
	// Progress receives the build's events; nil discards them.
	Progress func(Event)
}

// Event is one thing a build reports.
type Event struct {
	// Kind is EventStep (a step starts), EventCached (a step was found in
	// the cache), EventDone (a step finished), EventOutput (a line of a
	// RUN step's output) or EventWarning.
	Kind string `json:"kind"`
	// Step counts from 1 over the steps of every stage built; Steps is
	// their number.
	Step  int    `json:"step,omitempty"`
	Steps int    `json:"steps,omitempty"`
	Stage string `json:"stage,omitempty"`
	// Instruction is the step as the Dockerfile writes it; Line is its
	// line.
	Instruction string `json:"instruction,omitempty"`
	Line        int    `json:"line,omitempty"`
	// Output is a line of output (EventOutput) or a warning.
	Output string `json:"output,omitempty"`
	// Image is the step's resulting image (EventCached, EventDone).
	Image string `json:"image,omitempty"`
	// Duration is how long the step took (EventDone).
	Duration time.Duration `json:"duration_ns,omitempty"`
}

// The kinds of Event.
const (
	EventStep    = "step"
	EventCached  = "cached"
	EventDone    = "done"
	EventOutput  = "output"
	EventWarning = "warning"
)

// Result is what a build made.
type Result struct {
	Digest v1.Hash `json:"digest"` // the manifest's
	ID     v1.Hash `json:"id"`     // the config's
	Steps  int     `json:"steps"`
	Cached int     `json:"cached"`
	// Key is the build cache key of the image's last step; for a
	// cache-only build that misses (returned with image.ErrNotCached), the
	// key of the first step the cache lacks.
	Key string `json:"key"`
	// Tags are the names recorded.
	Tags     []string      `json:"tags,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Run builds the image opts describe, records it under opts.Tags and
// returns it. A failed step fails the build with an error naming the step,
// its line and, for RUN, its exit code and last lines of output; the steps
// before it stay in the cache.
func (b *Builder) Run(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Context == "" {
		return nil, errors.New("build: no context directory")
	}
	ctxDir, err := filepath.Abs(opts.Context)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(ctxDir); err != nil {
		return nil, fmt.Errorf("build context %s: %w", opts.Context, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", opts.Context)
	}
	opts.Context = ctxDir
	if opts.Dockerfile == "" {
		opts.Dockerfile = "Dockerfile"
	}
	if !filepath.IsAbs(opts.Dockerfile) {
		opts.Dockerfile = filepath.Join(ctxDir, opts.Dockerfile)
	}
	switch opts.Network {
	case "":
		opts.Network = "none"
	case "none", "host":
	default:
		return nil, fmt.Errorf("build network %q: use none or host", opts.Network)
	}
	tags := make([]string, len(opts.Tags))
	for i, t := range opts.Tags {
		// Checked before any step runs.
		n, err := image.NormalizeName(t)
		if err != nil {
			return nil, err
		}
		tags[i] = n
	}
	opts.Tags = tags
	df, err := parseDockerfile(opts.Dockerfile)
	if err != nil {
		return nil, err
	}
	release, err := b.store.Hold()
	if err != nil {
		return nil, err
	}
	defer release()
	cache, err := b.store.BuildCache()
	if err != nil {
		return nil, err
	}
	r := &run{b: b, opts: opts, df: df, cache: cache, stages: map[int]*image.Image{}}
	img, err := r.build(ctx)
	if errors.Is(err, image.ErrNotCached) {
		return &Result{Key: r.lastKey, Steps: r.total, Cached: r.cached}, err
	}
	if err != nil {
		return nil, err
	}
	for _, t := range opts.Tags {
		if err := b.store.Tag(t, img.Digest); err != nil {
			return nil, err
		}
	}
	key := r.lastKey
	if key == "" {
		key = img.Digest.String() // a Dockerfile of FROM lines only
	}
	return &Result{Digest: img.Digest, ID: img.ID, Steps: r.total, Cached: r.cached, Key: key, Tags: opts.Tags, Duration: time.Since(start)}, nil
}

// Build builds an image's build block: the image store's Builder. The
// image's name is recorded by the store, not here.
func (b *Builder) Build(ctx context.Context, spec *resource.ImageBuildSpec, cacheOnly bool) (v1.Hash, string, error) {
	res, err := b.Run(ctx, Options{
		Context:    spec.Context,
		Dockerfile: spec.Dockerfile,
		Args:       spec.Args,
		Target:     spec.Target,
		Network:    spec.Network,
		CacheOnly:  cacheOnly,
	})
	if res == nil {
		return v1.Hash{}, "", err
	}
	return res.Digest, res.Key, err
}
