// Package plan computes what an apply would do: for every resource
// instance, create, update in place, replace, delete or nothing, with the
// attributes that changed and, for every replacement, the reason. It renders
// plans as text and JSON and saves them to files that refuse to apply once
// the configuration or the state moved on.
//
// plan imports resource and state; it knows nothing of HCL files or drivers.
// Host facts reach it through the observations and the Preview function the
// caller passes in.
package plan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/seed-e88ffcd2/berth/state"
	"github.com/zclconf/go-cty/cty"
)

// Action is what an apply does to one instance.
type Action string

// The actions, in the words plans show.
const (
	NoOp    Action = "no-op"
	Create  Action = "create"
	Update  Action = "update"
	Replace Action = "replace"
	Delete  Action = "delete"
)

// Change is the planned change of one instance. It explains itself: the
// values before and after (After may hold unknowns, shown as "known after
// apply"), the attribute paths that force a replacement, and the reasons in
// words.
type Change struct {
	Addr   resource.Addr
	Action Action
	Before cty.Value // null on create
	After  cty.Value // null on delete
	// ReplacePaths are the attributes whose change forces the replacement.
	ReplacePaths []cty.Path
	// Reasons say why the change is needed: "image digest changed",
	// "container exited outside berth".
	Reasons []string
	// Deps order the apply: for creates and updates, what the
	// configuration refers to; for deletes, what the object depended on.
	Deps []resource.Addr
	// DataBytes is what a deleted volume holds.
	DataBytes int64
}

// Plan is the result of Compute.
type Plan struct {
	Project    string
	Lineage    string // state the plan was computed from
	Serial     uint64
	ConfigHash string
	Destroy    bool
	// DeleteVolumeData records that the user allowed deleting volumes
	// holding data; apply checks each volume again just before deleting.
	DeleteVolumeData bool
	Changes          []*Change // sorted by address
	Outputs          map[string]cty.Value
	// Config is what apply evaluates once dependencies are known. It is
	// not saved in plan files: applying a saved plan loads it again.
	Config *resource.Config
	// Prior is the snapshot the plan was computed from.
	Prior *state.Snapshot
}

// PreviewFunc fills in computed attributes known before apply and checks
// the desired value against the host (driver.Previewer).
type PreviewFunc func(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error)

// Options tune Compute.
type Options struct {
	// Destroy plans the deletion of everything in the snapshot.
	Destroy bool
	// DeleteVolumeData allows deleting volumes that hold data; without it
	// such a plan is refused.
	DeleteVolumeData bool
	// Preview, if set, is called for every instance to be kept or made.
	Preview PreviewFunc
}

// Summary counts the changes by action.
type Summary struct {
	Add     int `json:"add"`
	Change  int `json:"change"`
	Replace int `json:"replace"`
	Destroy int `json:"destroy"`
}

// Summary counts the plan's changes.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			s.Add++
		case Update:
			s.Change++
		case Replace:
			s.Replace++
		case Delete:
			s.Destroy++
		}
	}
	return s
}

// HasChanges reports whether applying the plan would change anything.
// Output changes count: applying the plan records the new values.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Action != NoOp {
			return true
		}
	}
	return len(p.OutputChanges()) > 0
}

// OutputChanges lists, in name order, the outputs whose value differs from
// the one the last apply recorded (or may differ: not yet known), and
// those no longer declared. A destroy records no outputs.
func (p *Plan) OutputChanges() []string {
	if p.Destroy {
		return nil
	}
	var names []string
	recorded := map[string]cty.Value{}
	if p.Prior != nil {
		recorded = p.Prior.Outputs
	}
	for name, v := range p.Outputs {
		old, ok := recorded[name]
		if !ok || !v.IsWhollyKnown() || !equal(old, v) {
			names = append(names, name)
		}
	}
	for name := range recorded {
		if _, ok := p.Outputs[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Change returns the change for addr, or nil.
func (p *Plan) Change(addr resource.Addr) *Change {
	for _, c := range p.Changes {
		if c.Addr == addr {
			return c
		}
	}
	return nil
}

// Compute diffs the configuration against the recorded state, corrected by
// what observing the host found, and returns the plan. Diagnostics hold
// every evaluation error and every refusal (a volume with data to delete,
// two containers publishing one port), all of them, not the first.
func Compute(ctx context.Context, cfg *resource.Config, snap *state.Snapshot, observed map[resource.Addr]resource.Observation, opts Options) (*Plan, hcl.Diagnostics) {
	snap = Conformed(snap)
	p := &Plan{
		Project:          snap.Project,
		Lineage:          snap.Lineage,
		Serial:           snap.Serial,
		ConfigHash:       cfg.Hash,
		Destroy:          opts.Destroy,
		Config:           cfg,
		DeleteVolumeData: opts.DeleteVolumeData,
		Prior:            snap,
	}
	var diags hcl.Diagnostics
	planned := map[resource.Addr]cty.Value{}
	kept := map[resource.Addr]bool{}

	if !opts.Destroy {
		// Objects of instances no longer configured are deleted before
		// anything is created: their host-wide names are free for a
		// block that was only renamed.
		var released []resource.Owner
		for addr := range snap.Objects {
			if cfg.Instance(addr) == nil {
				released = append(released, resource.Owner{Project: snap.Project, Addr: addr})
			}
		}
		order, d := Order(cfg.Instances)
		diags = append(diags, d...)
		recreated := map[resource.Addr]bool{}
		add := func(in *resource.Instance, ch *Change) {
			kept[in.Addr] = true
			recreated[in.Addr] = ch.Action == Replace || ch.Action == Create && snap.Objects[in.Addr] != nil
			planned[in.Addr] = ch.After
			p.Changes = append(p.Changes, ch)
		}
		// An instance refused only because its host-wide name is taken
		// waits for the end: the name may belong to an instance this plan
		// replaces (a name moving between blocks), which is known only
		// once every instance is planned.
		var waiting []*resource.Instance
		for _, in := range order {
			ch, d := planInstance(resource.WithReleased(ctx, released), snap.Project, in, snap.Objects[in.Addr], observed, planned, recreated, opts)
			if ch == nil && nameTaken(d) {
				waiting = append(waiting, in)
				continue
			}
			diags = append(diags, d...)
			if ch != nil {
				add(in, ch)
			}
		}
		// Every delete runs before any create, and a failed delete starts
		// nothing new: a replaced instance's old name is free by the time
		// anything is created.
		for _, ch := range p.Changes {
			if ch.Action == Replace {
				released = append(released, resource.Owner{Project: snap.Project, Addr: ch.Addr})
			}
		}
		for _, in := range waiting {
			ch, d := planInstance(resource.WithReleased(ctx, released), snap.Project, in, snap.Objects[in.Addr], observed, planned, recreated, opts)
			diags = append(diags, d...)
			if ch != nil {
				add(in, ch)
			}
		}
		diags = append(diags, checkConflicts(cfg, p.Changes)...)
	}

	for _, obj := range snap.Objects {
		if kept[obj.Addr] || cfg.Instance(obj.Addr) != nil && !opts.Destroy {
			continue
		}
		ch := &Change{
			Addr:    obj.Addr,
			Action:  Delete,
			Before:  obj.Value,
			After:   cty.NullVal(obj.Value.Type()),
			Deps:    obj.Deps,
			Reasons: []string{deleteReason(cfg, obj.Addr, opts.Destroy)},
		}
		ch.DataBytes = observed[obj.Addr].DataBytes
		diags = append(diags, checkDataLoss(ch, opts)...)
		p.Changes = append(p.Changes, ch)
	}
	sort.Slice(p.Changes, func(i, j int) bool { return p.Changes[i].Addr.Less(p.Changes[j].Addr) })

	if !opts.Destroy {
		outs, d := EvalOutputs(cfg, planned)
		p.Outputs = outs
		diags = append(diags, d...)
	}
	return p, diags
}

// nameTaken reports whether the diagnostics say only that a host-wide name
// belongs to another owner.
func nameTaken(diags hcl.Diagnostics) bool {
	if !diags.HasErrors() {
		return false
	}
	for _, d := range diags {
		err, ok := d.Extra.(error)
		if d.Severity == hcl.DiagError && (!ok || !errors.Is(err, resource.ErrAlreadyExists)) {
			return false
		}
	}
	return true
}

// Conformed returns the snapshot with every recorded value brought to its
// kind's current schema, so state written before an attribute existed
// plans as if it had never been set. Whoever hands recorded values to a
// driver (refresh, destroy) conforms them first: drivers decode to the
// current schema.
func Conformed(snap *state.Snapshot) *state.Snapshot {
	out := *snap
	out.Objects = make(map[resource.Addr]*resource.Object, len(snap.Objects))
	for addr, obj := range snap.Objects {
		c := *obj
		if schema := resource.SchemaOf(addr.Kind); schema != nil {
			c.Value = resource.Conform(schema, obj.Value)
		}
		out.Objects[addr] = &c
	}
	return &out
}

func deleteReason(cfg *resource.Config, addr resource.Addr, destroy bool) string {
	if destroy {
		return "berth destroy"
	}
	for _, in := range cfg.Instances {
		if in.Addr.Resource() == addr.Resource() {
			return "its count or for_each no longer includes " + string(addr.Key)
		}
	}
	return "no longer in the configuration"
}

// planInstance plans one configured instance. planned holds the planned
// values of instances earlier in dependency order; recreated says which of
// them are deleted and made again, which breaks whatever uses them (a
// container on a network that is recreated loses its interface).
func planInstance(ctx context.Context, project string, in *resource.Instance, prior *resource.Object, observed map[resource.Addr]resource.Observation, planned map[resource.Addr]cty.Value, recreated map[resource.Addr]bool, opts Options) (*Change, hcl.Diagnostics) {
	schema := resource.SchemaOf(in.Addr.Kind)
	desired, diags := in.EvalWith(planned)
	if diags.HasErrors() {
		return nil, diags
	}

	priorVal := cty.NullVal(schema.ImpliedType())
	if prior != nil {
		priorVal = prior.Value
	}
	// Values berth chose for attributes the user left unset (a network's
	// gateway) are kept only if the object is: a replacement chooses
	// afresh, or a changed subnet would keep a gateway outside it.
	fresh := fillComputed(schema, desired, cty.NullVal(schema.ImpliedType()), true)
	after := fresh
	if prior != nil && Diff(schema, priorVal, fresh).Action() != Replace {
		after = fillComputed(schema, desired, priorVal, true)
	}
	if opts.Preview != nil {
		v, err := opts.Preview(resource.WithOwner(ctx, resource.Owner{Project: project, Addr: in.Addr}), in.Addr, priorVal, after)
		if err != nil {
			return nil, append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s cannot be planned", in.Addr),
				Detail:   err.Error(),
				Subject:  in.DeclRange.Ptr(),
				Extra:    err,
			})
		}
		after = v
	}

	ch := &Change{Addr: in.Addr, Before: priorVal, After: after, Deps: in.Deps}
	obs, seen := observed[in.Addr]
	switch {
	case prior == nil:
		ch.Action = Create
		ch.Before = cty.NullVal(schema.ImpliedType())
	case seen && obs.Health == resource.Missing:
		ch.Action = Create
		ch.Reasons = append(ch.Reasons, obs.Reason)
	default:
		diff := Diff(schema, priorVal, after)
		ch.Action = diff.Action()
		ch.ReplacePaths = diff.ReplacePaths()
		ch.Reasons = diff.Reasons()
		switch {
		case seen && obs.Health == resource.Degraded:
			ch.Action = Replace
			ch.Reasons = append([]string{obs.Reason}, ch.Reasons...)
		case seen && obs.Health == resource.Stopped:
			// Started again by the update, unless it is replaced anyway.
			reason := obs.Reason
			if ch.Action == NoOp {
				ch.Action = Update
				reason += "; apply starts it again"
			}
			ch.Reasons = append([]string{reason}, ch.Reasons...)
		}
		if ch.Action != Replace {
			for _, d := range in.Deps {
				if recreated[d] {
					ch.Action = Replace
					ch.Reasons = append(ch.Reasons, d.String()+" is recreated")
				}
			}
		}
	}
	if ch.Action == NoOp || ch.Action == Update {
		ch.After = fillComputed(schema, ch.After, priorVal, false)
	}
	if ch.Action == Replace || ch.Action == Create {
		ch.DataBytes = obs.DataBytes
		if ch.Action == Replace {
			diags = append(diags, checkDataLoss(ch, opts)...)
		}
	}
	return ch, diags
}

// fillComputed sets the computed attributes of a desired value. On the
// first pass, before the action is known, optional computed attributes the
// user left unset keep their prior value and the others become unknown, so
// that Preview recomputes them; on the second (the object is kept or
// updated), what is still unknown takes the prior value.
func fillComputed(schema *resource.Schema, v, prior cty.Value, firstPass bool) cty.Value {
	set := map[string]cty.Value{}
	for name, a := range schema.Attributes {
		if !a.Computed {
			continue
		}
		cur := v.GetAttr(name)
		if cur.IsKnown() && !cur.IsNull() {
			continue
		}
		var old cty.Value
		if !prior.IsNull() {
			old = prior.GetAttr(name)
		}
		switch {
		case firstPass && a.Optional && old != cty.NilVal && !old.IsNull():
			set[name] = old
		case firstPass:
			set[name] = cty.UnknownVal(a.Type)
		case old != cty.NilVal && !cur.IsKnown():
			set[name] = old
		}
	}
	if len(set) == 0 {
		return v
	}
	return resource.WithAttrs(v, set)
}

func checkDataLoss(ch *Change, opts Options) hcl.Diagnostics {
	if ch.Addr.Kind != resource.KindVolume || ch.DataBytes == 0 || opts.DeleteVolumeData {
		return nil
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("%s holds %s of data", ch.Addr, HumanBytes(ch.DataBytes)),
		Detail: fmt.Sprintf("This plan would %s the volume and lose its data. berth never deletes a volume's data unless told: "+
			"re-run with -delete-volume-data if that is what you want; to keep the data, keep the volume in the configuration, "+
			"or stop managing it with berth state rm %s (it stays on the host).", ch.Action, ch.Addr),
	}}
}

// HumanBytes writes a size the way people read it: 12 KiB, 3.4 MiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// checkConflicts refuses plans in which two instances would claim the same
// host-wide name or host port: caught here, before anything starts.
func checkConflicts(cfg *resource.Config, changes []*Change) hcl.Diagnostics {
	var diags hcl.Diagnostics
	names := map[string]resource.Addr{}
	ports := map[string]resource.Addr{}
	for _, ch := range changes {
		in := cfg.Instance(ch.Addr)
		v := ch.After
		if in == nil || v.IsNull() || !v.IsKnown() {
			continue
		}
		if n := v.GetAttr("name"); n.IsKnown() && !n.IsNull() && ch.Addr.Kind != resource.KindImage {
			key := string(ch.Addr.Kind) + "/" + n.AsString()
			if other, dup := names[key]; dup {
				diags = append(diags, conflict(in, fmt.Sprintf("Duplicate %s name %q", ch.Addr.Kind, n.AsString()),
					fmt.Sprintf("%s and %s are both named %q on this host; give one of them another name.", other, ch.Addr, n.AsString())))
			}
			names[key] = ch.Addr
		}
		if ch.Addr.Kind != resource.KindContainer {
			continue
		}
		ps := v.GetAttr("port")
		if !ps.IsKnown() || ps.IsNull() {
			continue
		}
		for it := ps.ElementIterator(); it.Next(); {
			_, p := it.Element()
			if !p.IsWhollyKnown() {
				continue
			}
			published, _ := p.GetAttr("published").AsBigFloat().Int64()
			hostIP, proto := p.GetAttr("host_ip").AsString(), p.GetAttr("protocol").AsString()
			for _, key := range portKeys(hostIP, published, proto) {
				if other, dup := ports[key]; dup && other != ch.Addr {
					diags = append(diags, conflict(in, fmt.Sprintf("Host port %d/%s is published twice", published, proto),
						fmt.Sprintf("%s and %s both publish %s:%d/%s; choose another published port for one of them.", other, ch.Addr, hostIP, published, proto)))
					break
				}
			}
			ports[fmt.Sprintf("%s:%d/%s", hostIP, published, proto)] = ch.Addr
		}
	}
	return diags
}

// portKeys lists the bindings a published port collides with: the same
// address, and the wildcard address, which covers every other.
func portKeys(hostIP string, port int64, proto string) []string {
	keys := []string{fmt.Sprintf("%s:%d/%s", hostIP, port, proto)}
	if hostIP != "0.0.0.0" {
		keys = append(keys, fmt.Sprintf("0.0.0.0:%d/%s", port, proto))
	}
	return keys
}

func conflict(in *resource.Instance, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: in.DeclRange.Ptr()}
}

// Order sorts instances so that every instance comes after what it depends
// on, ties broken by address for stable plans. A cycle (which the DSL
// already reports with its path) is returned as a diagnostic.
func Order(instances []*resource.Instance) ([]*resource.Instance, hcl.Diagnostics) {
	byAddr := map[resource.Addr]*resource.Instance{}
	for _, in := range instances {
		byAddr[in.Addr] = in
	}
	sorted := append([]*resource.Instance(nil), instances...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Addr.Less(sorted[j].Addr) })

	const (
		unvisited = iota
		visiting
		done
	)
	mark := map[resource.Addr]int{}
	var out []*resource.Instance
	var diags hcl.Diagnostics
	var stack []string
	var visit func(in *resource.Instance)
	visit = func(in *resource.Instance) {
		switch mark[in.Addr] {
		case done:
			return
		case visiting:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Dependency cycle",
				Detail:   strings.Join(append(stack, in.Addr.String()), " → ") + ": break the cycle by removing one reference or depends_on entry.",
				Subject:  in.DeclRange.Ptr(),
			})
			return
		}
		mark[in.Addr] = visiting
		stack = append(stack, in.Addr.String())
		for _, d := range in.Deps {
			if dep := byAddr[d]; dep != nil {
				visit(dep)
			}
		}
		stack = stack[:len(stack)-1]
		mark[in.Addr] = done
		out = append(out, in)
	}
	for _, in := range sorted {
		visit(in)
	}
	return out, diags
}

// EvalOutputs evaluates the configuration's outputs with the given
// instance values; values not yet known stay unknown.
func EvalOutputs(cfg *resource.Config, values map[resource.Addr]cty.Value) (map[string]cty.Value, hcl.Diagnostics) {
	out := map[string]cty.Value{}
	var diags hcl.Diagnostics
	for _, o := range cfg.Outputs {
		v, d := o.EvalWith(values)
		diags = append(diags, d...)
		out[o.Name] = v
	}
	return out, diags
}
