// Package apply carries out a plan: it walks the changes as a dependency
// graph with bounded parallelism, evaluates each instance once what it
// depends on exists, calls the kind's driver, and records every finished
// change in the state store at once — so whatever happens (a failed driver
// call, Ctrl-C, a crash) the recorded state is true to what exists, and the
// next plan repairs the rest.
//
// apply imports resource, plan, state and driver. It never prints: progress
// leaves through Hooks.
package apply

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/plan"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/seed-e88ffcd2/berth/state"
	"github.com/zclconf/go-cty/cty"
)

// Store is where finished changes are recorded (*state.Store).
type Store interface {
	Put(project string, obj *resource.Object) error
	Delete(project string, addr resource.Addr) error
	SetOutputs(project string, outputs map[string]cty.Value) error
	Snapshot(project string) (*state.Snapshot, error)
}

// Op is one driver operation. A replacement is two steps: delete, then
// create.
type Op string

// The operations.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
	// OpPrepare fetches or builds what a create will need, before any
	// delete runs (driver.Preparer).
	OpPrepare Op = "prepare"
)

// Step is one operation on one instance, as hooks see it.
type Step struct {
	Addr   resource.Addr
	Op     Op
	Change *plan.Change
}

// Hooks receive progress. Run calls them from a single goroutine, one at a
// time, so implementations need no locking.
type Hooks interface {
	PreApply(s Step)
	PostApply(s Step, err error, elapsed time.Duration)
}

// Options tune Run.
type Options struct {
	// Parallelism bounds the driver calls in flight (default 10).
	Parallelism int
	// Stop, when closed, schedules nothing new; what is in flight
	// finishes. Cancelling Run's context aborts what is in flight.
	Stop <-chan struct{}
}

// ErrInterrupted is returned when Stop closed before every step ran.
var ErrInterrupted = errors.New("interrupted")

type node struct {
	step    Step
	after   []*node // must finish before this one starts
	next    []*node // wait for this one
	wait    int
	started bool
	done    bool
}

// Run applies the plan, records the outputs, and returns the project's
// state as it now is — also when it fails, in which case the error says
// which changes failed and which were never started.
func Run(ctx context.Context, p *plan.Plan, drivers driver.Set, store Store, hooks Hooks, opts Options) (*state.Snapshot, error) {
	if opts.Parallelism <= 0 {
		opts.Parallelism = 10
	}
	nodes, err := graph(p, drivers)
	if err != nil {
		return p.Prior, err
	}
	values := map[resource.Addr]cty.Value{}
	for addr, obj := range p.Prior.Objects {
		values[addr] = obj.Value
	}
	var released []resource.Owner
	for _, ch := range p.Changes {
		if ch.Action == plan.Delete {
			released = append(released, resource.Owner{Project: p.Project, Addr: ch.Addr})
		}
	}
	ctx = resource.WithReleased(ctx, released)
	if err := prepare(ctx, p, drivers, hooks, values, opts); err != nil {
		return p.Prior, err
	}

	type result struct {
		n       *node
		value   cty.Value
		err     error
		elapsed time.Duration
	}
	results := make(chan result)
	var ready []*node
	for _, n := range nodes {
		if n.wait == 0 {
			ready = append(ready, n)
		}
	}
	var errs []error
	inflight, stopped := 0, false
	stop := opts.Stop
	for {
		for len(ready) > 0 && inflight < opts.Parallelism && !stopped && len(errs) == 0 {
			// Stop is looked at before each new step, not only while
			// waiting: a select between a finished step and a closed Stop
			// picks either, and nothing new may start once it is closed.
			select {
			case <-stop:
				stopped, stop = true, nil
				continue
			default:
			}
			n := ready[0]
			ready = ready[1:]
			desired, err := desiredValue(p, n.step, values)
			n.started = true
			hooks.PreApply(n.step)
			if err != nil {
				hooks.PostApply(n.step, err, 0)
				errs = append(errs, fmt.Errorf("%s: %w", n.step.Addr, err))
				break
			}
			inflight++
			go func() {
				start := time.Now()
				v, err := execute(ctx, p, drivers, n.step, desired)
				results <- result{n: n, value: v, err: err, elapsed: time.Since(start)}
			}()
		}
		if inflight == 0 {
			break
		}
		select {
		case r := <-results:
			inflight--
			s := r.n.step
			if r.err == nil {
				r.err = record(store, p, s, r.value, values)
			}
			hooks.PostApply(s, r.err, r.elapsed)
			if r.err != nil {
				errs = append(errs, fmt.Errorf("%s: %s failed: %w", s.Addr, s.Op, r.err))
				continue
			}
			r.n.done = true
			for _, nx := range r.n.next {
				if nx.wait--; nx.wait == 0 {
					ready = append(ready, nx)
				}
			}
		case <-stop:
			stopped, stop = true, nil
		}
	}

	var notStarted []string
	for _, n := range nodes {
		if !n.started {
			notStarted = append(notStarted, string(n.step.Op)+" "+n.step.Addr.String())
		}
	}
	switch {
	case stopped:
		errs = append(errs, fmt.Errorf("%w; not started: %s", ErrInterrupted, listOrNone(notStarted)))
	case len(errs) > 0 && len(notStarted) > 0:
		errs = append(errs, fmt.Errorf("not started: %s", strings.Join(notStarted, ", ")))
	}
	// The outputs as the objects now are, also after a failure: what is
	// known of them is true. A destroy leaves none.
	var outputs map[string]cty.Value
	if !p.Destroy {
		outputs, _ = plan.EvalOutputs(p.Config, values)
	}
	if err := store.SetOutputs(p.Project, outputs); err != nil {
		errs = append(errs, fmt.Errorf("recording the outputs: %w", err))
	}
	snap, serr := store.Snapshot(p.Project)
	if serr != nil {
		errs = append(errs, fmt.Errorf("reading state after apply: %w", serr))
		snap = p.Prior
	}
	return snap, errors.Join(errs...)
}

// prepare has the drivers that can fetch or build ahead (images) do so for
// what the plan creates, when the plan also deletes: every delete runs
// before every create, so a build that fails or a registry that is down
// would otherwise be found only after the objects being replaced are
// gone. A failure here changes nothing. A value not yet known (it depends
// on something the apply makes) is left to its create.
func prepare(ctx context.Context, p *plan.Plan, drivers driver.Set, hooks Hooks, values map[resource.Addr]cty.Value, opts Options) error {
	deletes := false
	for _, ch := range p.Changes {
		deletes = deletes || ch.Action == plan.Delete || ch.Action == plan.Replace
	}
	if !deletes {
		return nil
	}
	for _, ch := range p.Changes {
		pr, ok := drivers[ch.Addr.Kind].(driver.Preparer)
		if !ok || (ch.Action != plan.Create && ch.Action != plan.Replace) {
			continue
		}
		select {
		case <-opts.Stop:
			return fmt.Errorf("%w before anything changed", ErrInterrupted)
		default:
		}
		s := Step{Addr: ch.Addr, Op: OpPrepare, Change: ch}
		desired, err := desiredValue(p, Step{Addr: ch.Addr, Op: OpCreate, Change: ch}, values)
		if err != nil || !desired.IsWhollyKnown() {
			continue
		}
		hooks.PreApply(s)
		start := time.Now()
		err = pr.Prepare(ctx, ch.Addr, desired)
		hooks.PostApply(s, err, time.Since(start))
		if err != nil {
			return fmt.Errorf("%s: prepare failed, so nothing was changed: %w", ch.Addr, err)
		}
	}
	return nil
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

// graph turns the plan's changes into steps and orders them: creates and
// updates after what they depend on, deletes before what the deleted object
// depended on, a replacement's delete before its create, and every delete
// before every create so that freed names, ports and addresses can be
// taken again in the same apply.
func graph(p *plan.Plan, drivers driver.Set) ([]*node, error) {
	var nodes, deletes, puts []*node
	del := map[resource.Addr]*node{}
	put := map[resource.Addr]*node{}
	for _, ch := range p.Changes {
		if ch.Action == plan.NoOp {
			continue
		}
		if drivers[ch.Addr.Kind] == nil {
			return nil, fmt.Errorf("no driver for %s", ch.Addr.Kind)
		}
		if ch.Action == plan.Delete || ch.Action == plan.Replace {
			n := &node{step: Step{Addr: ch.Addr, Op: OpDelete, Change: ch}}
			del[ch.Addr] = n
			deletes = append(deletes, n)
		}
		switch ch.Action {
		case plan.Create, plan.Replace:
			n := &node{step: Step{Addr: ch.Addr, Op: OpCreate, Change: ch}}
			put[ch.Addr] = n
			puts = append(puts, n)
		case plan.Update:
			n := &node{step: Step{Addr: ch.Addr, Op: OpUpdate, Change: ch}}
			put[ch.Addr] = n
			puts = append(puts, n)
		}
	}
	edge := func(first, then *node) {
		then.after = append(then.after, first)
		first.next = append(first.next, then)
		then.wait++
	}
	for addr, n := range del {
		if prior := p.Prior.Objects[addr]; prior != nil {
			for _, d := range prior.Deps {
				if dn := del[d]; dn != nil && dn != n {
					edge(n, dn)
				}
			}
		}
	}
	for _, n := range puts {
		for _, d := range n.step.Change.Deps {
			if dn := put[d]; dn != nil && dn != n {
				edge(dn, n)
			}
		}
		for _, dn := range deletes {
			edge(dn, n)
		}
	}
	nodes = append(deletes, puts...)
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].step.Addr.Less(nodes[j].step.Addr) })
	return nodes, nil
}

// desiredValue evaluates the instance with the values its dependencies now
// have. Computed attributes carry what the plan already knew (a digest or a
// subnet found at plan time) or, for an update, what the object has; the
// rest are null for the driver to fill in.
func desiredValue(p *plan.Plan, s Step, values map[resource.Addr]cty.Value) (cty.Value, error) {
	if s.Op == OpDelete {
		return s.Change.Before, nil
	}
	in := p.Config.Instance(s.Addr)
	if in == nil {
		return cty.NilVal, fmt.Errorf("not in the configuration")
	}
	v, diags := in.EvalWith(values)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	schema := resource.SchemaOf(s.Addr.Kind)
	set := map[string]cty.Value{}
	for name, a := range schema.Attributes {
		if !a.Computed {
			continue
		}
		cur := v.GetAttr(name)
		if cur.IsKnown() && !cur.IsNull() {
			continue
		}
		src := s.Change.After
		if s.Op == OpUpdate {
			src = s.Change.Before
		}
		set[name] = cty.NullVal(a.Type)
		if pv := src.GetAttr(name); pv.IsWhollyKnown() {
			set[name] = pv
		}
	}
	v = resource.WithAttrs(v, set)
	if !v.IsWhollyKnown() {
		return cty.NilVal, fmt.Errorf("some values are still unknown after its dependencies were applied")
	}
	return v, nil
}

// ErrDataLoss is returned for a volume that holds data when the plan did
// not allow deleting volume data.
var ErrDataLoss = errors.New("volume holds data")

func execute(ctx context.Context, p *plan.Plan, drivers driver.Set, s Step, desired cty.Value) (cty.Value, error) {
	ctx = resource.WithOwner(ctx, resource.Owner{Project: p.Project, Addr: s.Addr})
	d := drivers[s.Addr.Kind]
	if s.Op == OpDelete && s.Addr.Kind == resource.KindVolume && !p.DeleteVolumeData {
		// The last look before data goes: the plan may be old, or have
		// seen the volume empty.
		obs, err := d.Observe(ctx, s.Addr, desired)
		if err != nil {
			return cty.NilVal, err
		}
		if obs.DataBytes > 0 {
			return cty.NilVal, fmt.Errorf("%w (%s) and -delete-volume-data was not given; the volume was kept", ErrDataLoss, plan.HumanBytes(obs.DataBytes))
		}
	}
	switch s.Op {
	case OpCreate:
		return d.Create(ctx, s.Addr, desired)
	case OpUpdate:
		return d.Update(ctx, s.Addr, s.Change.Before, desired)
	default:
		return cty.NilVal, d.Delete(ctx, s.Addr, desired)
	}
}

// record writes a finished step to the store at once. A failure to record
// is reported as the step's failure: the object exists but the state does
// not say so, and the message must say exactly that.
func record(store Store, p *plan.Plan, s Step, v cty.Value, values map[resource.Addr]cty.Value) error {
	if s.Op == OpDelete {
		delete(values, s.Addr)
		if err := store.Delete(p.Project, s.Addr); err != nil {
			return fmt.Errorf("deleted, but the state could not record it: %w", err)
		}
		return nil
	}
	values[s.Addr] = v
	var deps []resource.Addr
	if in := p.Config.Instance(s.Addr); in != nil {
		deps = in.Deps
	}
	if err := store.Put(p.Project, &resource.Object{Addr: s.Addr, Value: v, Deps: deps}); err != nil {
		return fmt.Errorf("%sd, but the state could not record it (the next plan will find it): %w", s.Op, err)
	}
	return nil
}
