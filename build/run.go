package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/driver/image"
	"github.com/seed-e88ffcd2/berth/resource"
)

// cacheFormat is part of every cache key: changing what a step makes for
// the same inputs must change it.
const cacheFormat = "berth-build-1"

// defaultShell runs the shell forms of RUN, CMD and ENTRYPOINT, as
// Docker's does on Linux.
var defaultShell = []string{"/bin/sh", "-c"}

// run is one build in progress.
type run struct {
	b     *Builder
	opts  Options
	df    *dockerfile
	cache map[string]*image.BuildCacheEntry

	meta     *vars           // ARGs before the first FROM
	consumed map[string]bool // build arguments some ARG declared
	stages   map[int]*image.Image
	needed   []int
	total    int
	step     int
	cached   int
	// lastKey is the cache key of the last step looked up: the build's
	// key (Result.Key).
	lastKey string
	ctx     *contextDir // the build context, read once
}

// stage is the state of the stage being built.
type stage struct {
	index int
	name  string
	img   *image.Image
	cfg   *v1.ConfigFile
	args  *vars // ARGs declared in the stage, with their values
	// cmdSet: CMD was given in this stage, so a later ENTRYPOINT keeps it.
	cmdSet bool
}

func (r *run) emit(e Event) {
	if r.opts.Progress != nil {
		r.opts.Progress(e)
	}
}

func (r *run) build(ctx context.Context) (*image.Image, error) {
	target, err := r.df.targetIndex(r.opts.Target)
	if err != nil {
		return nil, err
	}
	for _, w := range r.df.warnings {
		r.emit(Event{Kind: EventWarning, Output: w})
	}
	r.consumed = map[string]bool{}
	r.meta = newVars()
	lex := shell.NewLex(r.df.escape)
	for _, a := range r.df.metaArgs {
		for _, kv := range a.Args {
			if v, ok := r.opts.Args[kv.Key]; ok {
				r.meta.set(kv.Key, v)
				r.consumed[kv.Key] = true
			} else if kv.Value != nil {
				v, _, err := lex.ProcessWord(*kv.Value, r.meta)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: ARG %s: %w", r.df.path, rangeLine(a.Location()), kv.Key, err)
				}
				r.meta.set(kv.Key, v)
			}
		}
	}
	if r.needed, err = r.neededStages(target); err != nil {
		return nil, err
	}
	for _, i := range r.needed {
		r.total += 1 + len(r.df.stages[i].Commands)
	}
	var img *image.Image
	for _, i := range r.needed {
		if img, err = r.buildStage(ctx, i); err != nil {
			return nil, err
		}
		r.stages[i] = img
	}
	var unused []string
	for k := range r.opts.Args {
		if !r.consumed[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		r.emit(Event{Kind: EventWarning, Output: fmt.Sprintf("build arguments %s were not consumed: no ARG declares them", strings.Join(unused, ", "))})
	}
	if r.ctx != nil {
		r.ctx.saveSums()
	}
	return img, nil
}

// neededStages lists, in order, the stages the target depends on through
// FROM and COPY --from, and the target.
func (r *run) neededStages(target int) ([]int, error) {
	lex := shell.NewLex(r.df.escape)
	need := map[int]bool{}
	var visit func(i int) error
	visit = func(i int) error {
		if need[i] {
			return nil
		}
		need[i] = true
		st := r.df.stages[i]
		base, _, err := lex.ProcessWord(st.BaseName, r.meta)
		if err != nil {
			return fmt.Errorf("%s:%d: FROM: %w", r.df.path, rangeLine(st.Location), err)
		}
		if j, ok := r.df.stageIndex(base, i); ok {
			if err := visit(j); err != nil {
				return err
			}
		}
		for _, c := range st.Commands {
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
				from, _, err := lex.ProcessWord(cp.From, r.meta)
				if err != nil {
					from = cp.From
				}
				if j, ok := r.df.stageIndex(from, i); ok {
					if err := visit(j); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := visit(target); err != nil {
		return nil, err
	}
	var out []int
	for i := range r.df.stages {
		if need[i] {
			out = append(out, i)
		}
	}
	return out, nil
}

// stepError names the step that failed.
func (r *run) stepError(line int, instr string, err error) error {
	return fmt.Errorf("step %d/%d (%s:%d) %s: %w", r.step, r.total, filepath.Base(r.df.path), line, instr, err)
}

func (r *run) buildStage(ctx context.Context, i int) (*image.Image, error) {
	ds := r.df.stages[i]
	r.step++
	line := rangeLine(ds.Location)
	r.emit(Event{Kind: EventStep, Step: r.step, Steps: r.total, Stage: ds.Name, Instruction: ds.SourceCode, Line: line})
	start := time.Now()
	lex := shell.NewLex(r.df.escape)
	baseName, _, err := lex.ProcessWord(ds.BaseName, r.meta)
	if err != nil {
		return nil, r.stepError(line, ds.SourceCode, err)
	}
	base, err := r.baseImage(ctx, baseName, i)
	if err != nil {
		return nil, r.stepError(line, ds.SourceCode, err)
	}
	r.emit(Event{Kind: EventDone, Step: r.step, Steps: r.total, Stage: ds.Name, Image: base.Digest.String(), Duration: time.Since(start)})
	st := &stage{index: i, name: ds.Name, img: base, cfg: cloneConfig(base.Config), args: newVars()}
	for _, c := range ds.Commands {
		r.step++
		line := rangeLine(c.Location())
		text := sourceOf(c)
		r.emit(Event{Kind: EventStep, Step: r.step, Steps: r.total, Stage: ds.Name, Instruction: text, Line: line})
		if err := r.dispatch(ctx, st, c, text, line); err != nil {
			return nil, r.stepError(line, text, err)
		}
	}
	return st.img, nil
}

// sourceOf is a command as the Dockerfile writes it.
func sourceOf(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return strings.ToUpper(c.Name())
}

// baseImage is a stage's FROM: an earlier stage, scratch, or an image in
// the store (pulled when missing).
func (r *run) baseImage(ctx context.Context, name string, i int) (*image.Image, error) {
	if j, ok := r.df.stageIndex(name, i); ok {
		return r.stages[j], nil
	}
	if name == "scratch" {
		return r.scratch()
	}
	return r.imageRef(ctx, name)
}

// imageRef finds an image by name in the store, pulling it when missing
// (not in a cache-only build).
func (r *run) imageRef(ctx context.Context, name string) (*image.Image, error) {
	img, err := r.b.store.Lookup(name)
	if err == nil || !errors.Is(err, resource.ErrNotFound) {
		return img, err
	}
	if r.opts.CacheOnly {
		return nil, fmt.Errorf("image %s is not in the store: %w", name, image.ErrNotCached)
	}
	if _, perr := r.b.store.Pull(ctx, name, image.PullOptions{}); perr != nil {
		return nil, fmt.Errorf("image %s is not in the store, and pulling it failed: %w", name, perr)
	}
	return r.b.store.Lookup(name)
}

// scratch is the empty image.
func (r *run) scratch() (*image.Image, error) {
	cfg := &v1.ConfigFile{Architecture: runtime.GOARCH, OS: "linux"}
	return r.b.store.PutImage(cfg, nil)
}

func cloneConfig(c *v1.ConfigFile) *v1.ConfigFile {
	b, _ := json.Marshal(c)
	out := &v1.ConfigFile{}
	_ = json.Unmarshal(b, out)
	return out
}

// env is what ARG and ENV expansion sees in a stage: its ARGs, and its
// image's environment over them (ENV wins, as in Docker).
func (st *stage) env() *vars {
	v := newVars()
	for _, k := range st.args.keys {
		v.set(k, st.args.vals[k])
	}
	for _, kv := range st.cfg.Config.Env {
		k, val, _ := strings.Cut(kv, "=")
		v.set(k, val)
	}
	return v
}

// runArgs are the ARG values a RUN step sees in its environment: those an
// ENV of the same name does not override.
func (st *stage) runArgs() map[string]string {
	out := map[string]string{}
	for _, k := range st.args.keys {
		if !slices.ContainsFunc(st.cfg.Config.Env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") }) {
			out[k] = st.args.vals[k]
		}
	}
	return out
}

func (r *run) dispatch(ctx context.Context, st *stage, c instructions.Command, text string, line int) error {
	lex := shell.NewLex(r.df.escape)
	env := st.env()
	expand := func(word string) (string, error) {
		s, _, err := lex.ProcessWord(word, env)
		return s, err
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(expand); err != nil {
			return err
		}
	}
	if a, ok := c.(*instructions.ArgCommand); ok {
		// ARG makes no image: it only sets what later steps see.
		for _, kv := range a.Args {
			switch v, given := r.opts.Args[kv.Key]; {
			case given:
				st.args.set(kv.Key, v)
				r.consumed[kv.Key] = true
			case kv.Value != nil:
				st.args.set(kv.Key, *kv.Value)
			default:
				if v, ok := r.meta.Get(kv.Key); ok {
					st.args.set(kv.Key, v)
				}
			}
		}
		r.emit(Event{Kind: EventDone, Step: r.step, Steps: r.total, Stage: st.name, Image: st.img.Digest.String()})
		return nil
	}
	// The key: parent, the instruction after expansion (the command's
	// fields), and what else decides the result.
	desc, err := json.Marshal(c)
	if err != nil {
		return err
	}
	// The ARG values the step sees decide what it expands to.
	extra := sortedKV(st.args.vals)
	var prepare func() (string, error)
	var exec func() (*image.Image, error)
	var copied *copySpec // COPY's: --from is an input of the step
	switch c := c.(type) {
	case *instructions.RunCommand:
		network := instructions.GetNetwork(c)
		switch {
		case network == instructions.NetworkDefault:
			network = r.opts.Network
		case network == instructions.NetworkHost && r.opts.Network != instructions.NetworkHost:
			// As Docker asks for --allow network.host: a Dockerfile from
			// elsewhere does not get the host's network on its own say.
			return fmt.Errorf("%s: RUN --network=host needs the builder's consent: pass --network host to berth build, or set network = \"host\" in the build block", text)
		}
		args := st.runArgs()
		extra += "\x00network=" + network
		exec = func() (*image.Image, error) { return r.runStep(ctx, st, c, text, network, args) }
	case *instructions.CopyCommand:
		cp := &copySpec{srcs: c.SourcePaths, dest: c.DestPath, from: c.From, chown: c.Chown, chmod: c.Chmod}
		copied = cp
		prepare = func() (string, error) { return r.prepareCopy(ctx, st, cp) }
		exec = func() (*image.Image, error) { return r.copyStep(st, cp, text) }
	case *instructions.AddCommand:
		cp := &copySpec{srcs: c.SourcePaths, dest: c.DestPath, chown: c.Chown, chmod: c.Chmod, add: true, unpack: c.Unpack == nil || *c.Unpack}
		prepare = func() (string, error) { return r.prepareCopy(ctx, st, cp) }
		exec = func() (*image.Image, error) { return r.copyStep(st, cp, text) }
	default:
		exec = func() (*image.Image, error) {
			if err := r.configure(st, c, expand); err != nil {
				return nil, err
			}
			st.cfg.History = append(st.cfg.History, history(text, true))
			st.cfg.Created = v1.Time{Time: time.Now().UTC()}
			return r.b.store.PutImage(st.cfg, image.LayersOf(st.img))
		}
	}
	if prepare != nil {
		inputs, err := prepare()
		if err != nil {
			return err
		}
		extra += "\x00" + inputs
	}
	key := cacheKey(st.img.Digest.String(), string(desc), extra)
	r.lastKey = key
	// The images the key depends on: pruning keeps their cache entries
	// with this one's (another stage copied from is one).
	inputs := []v1.Hash{st.img.Digest}
	if copied != nil && copied.fromImg != nil {
		inputs = append(inputs, copied.fromImg.Digest)
	}
	start := time.Now()
	if !r.opts.NoCache {
		if e := r.cache[key]; e != nil {
			if img, err := r.b.store.ImageByDigest(e.Manifest); err == nil {
				if !slices.Equal(e.Inputs, inputs) && !r.opts.CacheOnly {
					// An entry from before inputs were recorded.
					if err := r.b.store.AddBuildCache(key, img.Digest, inputs...); err != nil {
						return err
					}
				}
				r.cached++
				st.img, st.cfg = img, cloneConfig(img.Config)
				if _, ok := c.(*instructions.CmdCommand); ok {
					st.cmdSet = true
				}
				r.emit(Event{Kind: EventCached, Step: r.step, Steps: r.total, Stage: st.name, Image: img.Digest.String()})
				return nil
			}
		}
	}
	if r.opts.CacheOnly {
		return image.ErrNotCached
	}
	img, err := exec()
	if err != nil {
		return err
	}
	if _, ok := c.(*instructions.CmdCommand); ok {
		st.cmdSet = true
	}
	st.img, st.cfg = img, cloneConfig(img.Config)
	if err := r.b.store.AddBuildCache(key, img.Digest, inputs...); err != nil {
		return err
	}
	r.cache[key] = &image.BuildCacheEntry{Manifest: img.Digest, Inputs: inputs}
	r.emit(Event{Kind: EventDone, Step: r.step, Steps: r.total, Stage: st.name, Image: img.Digest.String(), Duration: time.Since(start)})
	return nil
}

func cacheKey(parts ...string) string {
	h := sha256.New()
	h.Write([]byte(cacheFormat))
	for _, p := range parts {
		fmt.Fprintf(h, "\x00%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortedKV(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\x00", k, m[k])
	}
	return b.String()
}

func history(text string, empty bool) v1.History {
	return v1.History{Created: v1.Time{Time: time.Now().UTC()}, CreatedBy: text, Comment: "berth build", EmptyLayer: empty}
}

// configure applies an instruction that changes only the image config.
func (r *run) configure(st *stage, c instructions.Command, expand func(string) (string, error)) error {
	cfg := &st.cfg.Config
	switch c := c.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		st.cfg.Author = c.Maintainer
	case *instructions.WorkdirCommand:
		p := c.Path
		if !strings.HasPrefix(p, "/") {
			p = filepath.Join(orRoot(cfg.WorkingDir), p)
		}
		cfg.WorkingDir = filepath.Clean(p)
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.CmdCommand:
		cfg.Cmd = r.commandLine(st, c.ShellDependantCmdLine)
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = r.commandLine(st, c.ShellDependantCmdLine)
		if !st.cmdSet {
			// Docker: an ENTRYPOINT resets the CMD a base image set.
			cfg.Cmd = nil
		}
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			p, err := expand(p)
			if err != nil {
				return err
			}
			ports, err := exposedPorts(p)
			if err != nil {
				return err
			}
			for _, p := range ports {
				cfg.ExposedPorts[p] = struct{}{}
			}
		}
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v = strings.TrimSpace(v); v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.HealthCheckCommand:
		h := c.Health
		cfg.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.ShellCommand:
		cfg.Shell = c.Shell
	default:
		return fmt.Errorf("%s is not supported by berth build", strings.ToUpper(c.Name()))
	}
	return nil
}

func orRoot(dir string) string {
	if dir == "" {
		return "/"
	}
	return dir
}

// commandLine is the argv of RUN, CMD and ENTRYPOINT: the exec form as it
// is, the shell form through the stage's SHELL.
func (r *run) commandLine(st *stage, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	sh := st.cfg.Config.Shell
	if len(sh) == 0 {
		sh = defaultShell
	}
	return append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
}

// setEnv sets KEY=value in an environment list, in place of an earlier
// value.
func setEnv(env []string, key, val string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			out := slices.Clone(env)
			out[i] = key + "=" + val
			return out
		}
	}
	return append(slices.Clone(env), key+"="+val)
}

// exposedPorts reads an EXPOSE word: PORT, PORT/PROTO or FIRST-LAST[/PROTO].
func exposedPorts(p string) ([]string, error) {
	port, proto, _ := strings.Cut(p, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("EXPOSE %s: protocol %q is not tcp, udp or sctp", p, proto)
	}
	first, last, isRange := strings.Cut(port, "-")
	lo, err := strconv.Atoi(first)
	hi := lo
	if err == nil && isRange {
		hi, err = strconv.Atoi(last)
	}
	if err != nil || lo < 1 || hi > 65535 || hi < lo {
		return nil, fmt.Errorf("EXPOSE %s: not a port or port range", p)
	}
	var out []string
	for n := lo; n <= hi; n++ {
		out = append(out, fmt.Sprintf("%d/%s", n, proto))
	}
	return out, nil
}

// runStep runs a RUN instruction in a one-shot container over the stage's
// image and stores what it changed as a layer.
func (r *run) runStep(ctx context.Context, st *stage, c *instructions.RunCommand, text, network string, args map[string]string) (*image.Image, error) {
	layers, err := r.b.store.LayerDirs(st.img)
	if err != nil {
		return nil, err
	}
	dir, err := r.b.store.TmpDir("run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := &outputLines{emit: func(line string) {
		r.emit(Event{Kind: EventOutput, Step: r.step, Steps: r.total, Stage: st.name, Output: line})
	}}
	argv := r.commandLine(st, c.ShellDependantCmdLine)
	cfg := st.cfg.Config
	code, err := r.b.runner.RunOneShot(ctx, container.OneShot{
		Dir:     dir,
		Layers:  layers,
		Image:   driver.ImageConfig{Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User},
		Args:    argv,
		Env:     args,
		Network: network,
		Stdout:  out,
		Stderr:  out,
	})
	out.flush()
	if err != nil {
		return nil, err
	}
	if code != 0 {
		msg := fmt.Sprintf("%q returned a non-zero code: %d", strings.Join(argv, " "), code)
		if tail := out.tail(); tail != "" {
			msg += "; its last output:\n" + tail
		}
		return nil, errors.New(msg)
	}
	layer, err := r.b.store.PutDiff(filepath.Join(dir, "upper"))
	if err != nil {
		return nil, err
	}
	return r.commit(st, text, layer)
}

// commit stores the stage's config with one more step in its history and
// the layer (if not empty) on top of its image's.
func (r *run) commit(st *stage, text string, layer image.Layer) (*image.Image, error) {
	st.cfg.History = append(st.cfg.History, history(text, layer.Empty))
	st.cfg.Created = v1.Time{Time: time.Now().UTC()}
	return r.b.store.PutImage(st.cfg, append(image.LayersOf(st.img), layer))
}

// outputLines splits a step's output into lines for the progress events
// and keeps the last ones for the error of a failed step.
type outputLines struct {
	mu   sync.Mutex
	emit func(string)
	buf  bytes.Buffer
	last []string
}

const tailLines = 20

func (o *outputLines) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	for {
		i := bytes.IndexByte(o.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := string(o.buf.Next(i + 1))
		o.line(strings.TrimRight(line, "\r\n"))
	}
	return len(p), nil
}

func (o *outputLines) line(s string) {
	o.emit(s)
	o.last = append(o.last, s)
	if len(o.last) > tailLines {
		o.last = o.last[1:]
	}
}

func (o *outputLines) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.buf.Len() > 0 {
		o.line(o.buf.String())
		o.buf.Reset()
	}
}

func (o *outputLines) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.last, "\n")
}
