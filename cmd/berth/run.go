package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/seed-e88ffcd2/berth/agent"
	"github.com/seed-e88ffcd2/berth/apply"
	"github.com/seed-e88ffcd2/berth/dsl"
	"github.com/seed-e88ffcd2/berth/plan"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/seed-e88ffcd2/berth/state"
)

// inputs are what loading a configuration takes; a saved plan keeps them
// so that applying it loads the same configuration again.
type inputs struct {
	Dir              string            `json:"dir"`
	Project          string            `json:"project,omitempty"`
	Vars             map[string]string `json:"vars,omitempty"`
	VarFiles         []string          `json:"var_files,omitempty"`
	Destroy          bool              `json:"destroy,omitempty"`
	DeleteVolumeData bool              `json:"delete_volume_data,omitempty"`
	Refresh          bool              `json:"refresh"`
	MoveProject      bool              `json:"move_project,omitempty"`
}

// configFlags registers the flags every configuration command shares.
type configFlags struct {
	dir, project string
	vars         multiFlag
	varFiles     multiFlag
	noColor      bool
	moveProject  bool
}

func (f *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "dir", ".", "configuration directory")
	fs.StringVar(&f.project, "project", "", "project name (default: the directory's name)")
	fs.Var(&f.vars, "var", "set a variable: -var 'name=value' (repeatable)")
	fs.Var(&f.varFiles, "var-file", "read variables from a file (repeatable)")
	fs.BoolVar(&f.noColor, "no-color", false, "no colours in the output")
	fs.BoolVar(&f.moveProject, "move-project", false, "let this directory take over the project from the directory that applied it")
}

// parseConfig parses a configuration command's flags and returns its
// inputs; ok false means the command is over, with exit code code.
func (c *CLI) parseConfig(fs *flag.FlagSet, cf *configFlags, args []string) (in inputs, pos []string, code int, ok bool) {
	pos, ok, code = parse(fs, args)
	if !ok {
		return in, nil, code, false
	}
	c.Color = c.Color && !cf.noColor
	c.ErrColor = c.ErrColor && !cf.noColor
	in, err := cf.inputs(c.abs)
	if err != nil {
		return in, nil, c.errorf("%v", err), false
	}
	return in, pos, 0, true
}

// inputs makes the flags' inputs, with paths made absolute by abs.
func (f *configFlags) inputs(abs func(string) (string, error)) (inputs, error) {
	in := inputs{Dir: f.dir, Project: f.project, Vars: map[string]string{}, Refresh: true, MoveProject: f.moveProject}
	dir, err := abs(f.dir)
	if err != nil {
		return in, err
	}
	in.Dir = dir
	for _, v := range f.vars {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return in, fmt.Errorf("-var %q: write -var 'name=value'", v)
		}
		in.Vars[name] = value
	}
	for _, vf := range f.varFiles {
		path, err := abs(vf)
		if err != nil {
			return in, err
		}
		in.VarFiles = append(in.VarFiles, path)
	}
	return in, nil
}

// load reads the configuration and prints its diagnostics.
func (c *CLI) load(in inputs) (*resource.Config, bool) {
	cfg, diags := c.loadQuiet(in)
	c.diagnostics(cfg, diags)
	return cfg, !diags.HasErrors()
}

// loadQuiet reads the configuration and returns its diagnostics unprinted.
func (c *CLI) loadQuiet(in inputs) (*resource.Config, hcl.Diagnostics) {
	return dsl.Load(in.Dir, dsl.Options{
		Project:  in.Project,
		Vars:     in.Vars,
		VarFiles: in.VarFiles,
		Environ:  c.environ(),
	})
}

func (c *CLI) diagnostics(cfg *resource.Config, diags hcl.Diagnostics) {
	if len(diags) == 0 {
		return
	}
	var files map[string]*hcl.File
	if cfg != nil {
		files = cfg.Files
	}
	if c.Cwd != "" {
		files, diags = dsl.RelativeTo(c.Cwd, files, diags)
	}
	_ = dsl.WriteDiagnostics(c.Stderr, files, diags, c.ErrColor)
}

// session is an opened host with the project's lock held.
type session struct {
	host    *agent.Host
	release func() error // lets go of the host (a no-op in the agent, which keeps it)
	unlock  func() error
}

func (s *session) close() {
	if s.unlock != nil {
		_ = s.unlock()
	}
	_ = s.release()
}

func (c *CLI) open(project, operation string, lock bool) (*session, error) {
	host, release, err := c.openHost()
	if err != nil {
		return nil, err
	}
	s := &session{host: host, release: release}
	if lock {
		s.unlock, err = host.Store.Lock(project, state.NewLockInfo(operation))
		if err != nil {
			release()
			if operation == "plan" && errors.Is(err, resource.ErrConflict) {
				err = fmt.Errorf("%w; a plan that only looks may skip the lock with -lock=false", err)
			}
			return nil, err
		}
	}
	return s, nil
}

// compute plans: snapshot, refresh, compute. It prints diagnostics.
func (c *CLI) compute(ctx context.Context, s *session, cfg *resource.Config, in inputs) (*plan.Plan, bool) {
	snap, err := s.host.Store.Snapshot(cfg.Project)
	if err != nil {
		c.errorf("%v", err)
		return nil, false
	}
	snap = plan.Conformed(snap)
	if snap.Dir != "" && snap.Dir != cfg.Dir && !in.MoveProject {
		c.errorf("project %q belongs to the configuration in %s, not %s: give this one its own project with -project NAME, or pass -move-project to move the project here",
			cfg.Project, snap.Dir, cfg.Dir)
		return nil, false
	}
	// Volumes are always looked at, also with -refresh=false: how much
	// data a volume holds decides whether deleting it is allowed.
	toObserve := snap.Objects
	if !in.Refresh {
		toObserve = map[resource.Addr]*resource.Object{}
		for addr, obj := range snap.Objects {
			if addr.Kind == resource.KindVolume {
				toObserve[addr] = obj
			}
		}
	}
	observed, err := s.host.Observe(ctx, cfg.Project, toObserve)
	if err != nil {
		c.errorf("refreshing: %v", err)
		return nil, false
	}
	if !in.Refresh {
		for addr, obs := range observed {
			observed[addr] = resource.Observation{DataBytes: obs.DataBytes}
		}
	}
	p, diags := plan.Compute(ctx, cfg, snap, observed, plan.Options{
		Destroy:          in.Destroy,
		DeleteVolumeData: in.DeleteVolumeData,
		Preview:          s.host.Preview,
	})
	c.diagnostics(cfg, diags)
	return p, !diags.HasErrors() && c.pinResolved(cfg, p)
}

func (c *CLI) plan(ctx context.Context, args []string) int {
	fs := c.newFlags("plan", "[flags]")
	var cf configFlags
	cf.register(fs)
	jsonOut := fs.Bool("json", false, "print the plan as JSON (format: docs/plan-json.md)")
	out := fs.String("out", "", "save the plan to this file, for berth apply FILE")
	refresh := fs.Bool("refresh", true, "observe the host for drift before planning")
	detailed := fs.Bool("detailed-exitcode", false, "exit 0 with no changes, 1 on error, 2 with changes")
	destroy := fs.Bool("destroy", false, "plan the deletion of everything")
	delData := fs.Bool("delete-volume-data", false, "allow deleting volumes that hold data")
	lock := fs.Bool("lock", true, "hold the project's state lock while planning")
	in, pos, code, ok := c.parseConfig(fs, &cf, args)
	if !ok {
		return code
	}
	if code, ok := c.noArgs("plan", pos); !ok {
		return code
	}
	in.Refresh, in.Destroy, in.DeleteVolumeData = *refresh, *destroy, *delData
	cfg, ok := c.load(in)
	if !ok {
		return 1
	}
	s, err := c.open(cfg.Project, "plan", *lock)
	if err != nil {
		return c.errorf("%v", err)
	}
	defer s.close()
	p, ok := c.compute(ctx, s, cfg, in)
	if !ok {
		return 1
	}
	if *jsonOut {
		err = plan.RenderJSON(c.Stdout, p)
	} else {
		err = plan.RenderText(c.Stdout, p, c.Color)
	}
	if err != nil {
		return c.errorf("%v", err)
	}
	if *out != "" {
		if err := c.savePlan(*out, p, in); err != nil {
			return c.errorf("saving the plan: %v", err)
		}
		if !*jsonOut {
			fmt.Fprintf(c.Stdout, "\nSaved the plan to %s. Apply exactly it with: berth apply %s\n", *out, *out)
		}
	}
	if *detailed && p.HasChanges() {
		return 2
	}
	return 0
}

func (c *CLI) savePlan(path string, p *plan.Plan, in inputs) error {
	// Plans hold configured values such as environment variables: secrets
	// stay readable by their owner only.
	f, err := c.openFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := plan.WriteFile(f, p, in); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (c *CLI) apply(ctx context.Context, args []string) int {
	return c.applyCommand(ctx, "apply", args)
}

func (c *CLI) destroy(ctx context.Context, args []string) int {
	return c.applyCommand(ctx, "destroy", args)
}

// applyCommand is apply and destroy: plan, show, confirm, apply.
func (c *CLI) applyCommand(ctx context.Context, name string, args []string) int {
	fs := c.newFlags(name, "[flags] [PLANFILE]")
	var cf configFlags
	cf.register(fs)
	auto := fs.Bool("auto-approve", false, "apply without asking for confirmation")
	jsonOut := fs.Bool("json", false, "print progress as JSON lines")
	refresh := fs.Bool("refresh", true, "observe the host for drift before planning")
	parallelism := fs.Int("parallelism", 10, "changes applied at once")
	delData := fs.Bool("delete-volume-data", false, "allow deleting volumes that hold data")
	in, pos, code, ok := c.parseConfig(fs, &cf, args)
	if !ok {
		return code
	}
	in.Refresh, in.Destroy, in.DeleteVolumeData = *refresh, name == "destroy", *delData
	if !*auto && !c.TTY && len(pos) == 0 {
		return c.errorf("berth %s asks for confirmation, and its input is not a terminal: pass -auto-approve, or save a plan with berth plan -out FILE and apply it with berth apply FILE", name)
	}
	if *parallelism < 1 {
		return c.errorf("-parallelism must be at least 1")
	}

	var saved *plan.SavedPlan
	if len(pos) > 1 {
		return c.errorf("%s takes at most one plan file, but was given %s", name, strings.Join(pos, " "))
	}
	if len(pos) == 1 {
		if name == "destroy" {
			return c.errorf("destroy takes no plan file; use berth plan -destroy -out FILE and berth apply FILE")
		}
		var conflicting []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "dir", "project", "var", "var-file", "refresh", "delete-volume-data", "move-project":
				conflicting = append(conflicting, "-"+f.Name)
			}
		})
		if len(conflicting) > 0 {
			return c.errorf("a saved plan applies exactly as it was made; %s cannot change it (make a new plan with them instead)", strings.Join(conflicting, ", "))
		}
		var err error
		if saved, in, err = c.readPlan(pos[0]); err != nil {
			return c.errorf("%v", err)
		}
	}
	var cfg *resource.Config
	if name == "destroy" {
		// Destroying needs only the project's state: it works after the
		// configuration was deleted or broken, or without its variables.
		loaded, diags := c.loadQuiet(in)
		if !hasConfig(in.Dir) || diags.HasErrors() {
			if hasConfig(in.Dir) {
				fmt.Fprintf(c.Stderr, "The configuration does not load (berth validate says why); destroying what the state records.\n\n")
			}
			loaded = &resource.Config{Dir: in.Dir, Project: in.Project}
			if loaded.Project == "" {
				loaded.Project = dsl.ProjectName(in.Dir)
			}
		}
		cfg = loaded
	} else if cfg, ok = c.load(in); !ok {
		return 1
	}
	s, err := c.open(cfg.Project, name, true)
	if err != nil {
		return c.errorf("%v", err)
	}
	defer s.close()
	p, ok := c.compute(ctx, s, cfg, in)
	if !ok {
		return 1
	}
	if saved != nil {
		if err := p.CheckSaved(saved); err != nil {
			return c.errorf("the saved plan %s cannot be applied: %v", pos[0], err)
		}
	} else if !*jsonOut {
		if err := plan.RenderText(c.Stdout, p, c.Color); err != nil {
			return c.errorf("%v", err)
		}
	}
	if !p.Destroy {
		if err := s.host.Store.Claim(cfg.Project, cfg.Dir, in.MoveProject); err != nil {
			return c.errorf("%v", err)
		}
	}
	if !p.HasChanges() {
		if p.Destroy && len(p.Prior.Objects) == 0 {
			// Nothing is recorded: the directory's claim goes too.
			if err := s.host.Store.Claim(cfg.Project, "", true); err != nil {
				return c.errorf("%v", err)
			}
		}
		c.printOutputs(p.Outputs, *jsonOut)
		return 0
	}
	if saved == nil && !*auto {
		if !c.confirm(name) {
			fmt.Fprintf(c.Stderr, "%s cancelled.\n", name)
			return 1
		}
	}
	return c.run(ctx, s, p, *jsonOut, *parallelism)
}

// hasConfig reports whether dir holds configuration files.
func hasConfig(dir string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
	return len(matches) > 0
}

func (c *CLI) readPlan(path string) (*plan.SavedPlan, inputs, error) {
	var in inputs
	f, err := c.openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, in, err
	}
	defer f.Close()
	saved, err := plan.ReadFile(f)
	if err != nil {
		return nil, in, fmt.Errorf("%s: %w", path, err)
	}
	if err := json.Unmarshal(saved.Inputs, &in); err != nil {
		return nil, in, fmt.Errorf("%s: %w", path, err)
	}
	return saved, in, nil
}

// openFile opens a file the user named, relative to the command's working
// directory; errors name it as the user did.
func (c *CLI) openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	path, err := c.abs(name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, flag, perm)
	var pe *os.PathError
	if errors.As(err, &pe) {
		pe.Path = name
	}
	return f, err
}

// confirm asks on the terminal; only "yes" approves.
func (c *CLI) confirm(name string) bool {
	question := "Do you want to perform these actions?"
	if name == "destroy" {
		question = "Do you really want to destroy everything listed above?"
	}
	fmt.Fprintf(c.Stdout, "\n%s\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", question)
	line, _ := bufio.NewReader(c.Stdin).ReadString('\n')
	return strings.TrimSpace(line) == "yes"
}

// run applies with progress and two-stage interruption: the first Ctrl-C
// stops scheduling and lets what is in flight finish, the second aborts.
func (c *CLI) run(ctx context.Context, s *session, p *plan.Plan, jsonOut bool, parallelism int) int {
	ctx, abort := context.WithCancel(ctx)
	defer abort()
	stop := make(chan struct{})
	sigs, unsubscribe := c.signals()
	defer unsubscribe()
	go func() {
		n := 0
		for {
			select {
			case <-sigs:
			case <-ctx.Done():
				return
			}
			n++
			if n == 1 {
				fmt.Fprintln(c.Stderr, "\nInterrupt received: finishing the changes in flight, starting nothing new. Interrupt again to abort them.")
				close(stop)
				continue
			}
			fmt.Fprintln(c.Stderr, "\nTwo interrupts received: aborting the changes in flight.")
			abort()
		}
	}()

	var hooks apply.Hooks = &jsonHooks{enc: json.NewEncoder(c.Stdout)}
	if !jsonOut {
		text := newTextHooks(c.Stdout, c.Color)
		done := make(chan struct{})
		defer close(done)
		go text.tick(done)
		hooks = text
		fmt.Fprintln(c.Stdout)
	}
	snap, err := apply.Run(ctx, p, s.host.Drivers, s.host.Store, hooks, apply.Options{Parallelism: parallelism, Stop: stop})
	outputs := snap.Outputs
	if p.Destroy && err == nil && len(snap.Objects) == 0 {
		// Nothing is left: the directory's claim on the project goes too.
		err = s.host.Store.Claim(p.Project, "", true)
	}
	sum := p.Summary()
	verb := "apply"
	if p.Destroy {
		verb = "destroy"
	}
	if jsonOut {
		ev := map[string]any{"type": "apply_complete", "summary": p.JSON().Summary, "serial": snap.Serial}
		if err != nil {
			ev["type"], ev["error"] = "apply_errored", err.Error()
		}
		_ = json.NewEncoder(c.Stdout).Encode(ev)
		c.printOutputs(outputs, true)
	}
	if err != nil {
		if errors.Is(err, apply.ErrInterrupted) {
			c.errorf("%s stopped before it finished. The state records what was done; run berth %s again to finish.\n%v", verb, verb, err)
		} else {
			c.errorf("%s failed. The state records what was done; fix the cause and run berth %s again.\n%v", verb, verb, err)
		}
		return 1
	}
	if !jsonOut {
		if p.Destroy {
			fmt.Fprintf(c.Stdout, "\n%s %d destroyed.\n", paint(c.Color, "\x1b[32;1m", "Destroy complete!"), sum.Destroy)
		} else {
			fmt.Fprintf(c.Stdout, "\n%s %d added, %d changed, %d replaced, %d destroyed.\n",
				paint(c.Color, "\x1b[32;1m", "Apply complete!"), sum.Add, sum.Change, sum.Replace, sum.Destroy)
		}
		c.printOutputs(outputs, false)
	}
	return 0
}

func paint(color bool, code, s string) string {
	if !color {
		return s
	}
	return code + s + "\x1b[0m"
}
