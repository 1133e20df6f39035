package plan

import (
	"sort"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// AttrChange is one top-level attribute or block that differs.
type AttrChange struct {
	Name   string
	Update resource.Update
	Reason string
	// Unknown: the new value is known only after apply, so it may or may
	// not differ; it counts as a change.
	Unknown bool
}

// Comparison is what Diff found: the differing attributes, in name order.
// It says what differed, not only whether.
type Comparison []AttrChange

// Diff compares a prior value with a planned one attribute by attribute.
// Computed attributes count only where the planned value is known (an image
// digest computed at plan time); configured ones count when they differ or
// are not yet known. Unset optional attributes are null on both sides, so an
// attribute the user never set never shows as a change.
func Diff(schema *resource.Schema, prior, after cty.Value) Comparison {
	var out Comparison
	for _, name := range schema.AttributeNames() {
		a := schema.Attributes[name]
		pv, av := prior.GetAttr(name), after.GetAttr(name)
		if a.Computed && !a.Optional && !av.IsWhollyKnown() {
			continue
		}
		if a.Computed && a.Optional && (av.IsNull() || !av.IsWhollyKnown()) {
			continue
		}
		if ac, changed := compare(name, pv, av, a.Update, a.Reason); changed {
			out = append(out, ac)
		}
	}
	for _, name := range schema.BlockNames() {
		b := schema.Blocks[name]
		if ac, changed := compare(name, prior.GetAttr(name), after.GetAttr(name), b.Update, b.Reason); changed {
			out = append(out, ac)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func compare(name string, pv, av cty.Value, update resource.Update, reason string) (AttrChange, bool) {
	ac := AttrChange{Name: name, Update: update, Reason: reason}
	if ac.Reason == "" {
		ac.Reason = name + " changed"
	}
	if !av.IsWhollyKnown() {
		ac.Unknown = true
		return ac, true
	}
	if !pv.IsWhollyKnown() {
		return ac, true
	}
	return ac, !equal(pv, av)
}

// equal treats null and empty collections alike: a block list that was
// never written and one written empty mean the same to a user.
func equal(a, b cty.Value) bool {
	if isEmpty(a) && isEmpty(b) {
		return true
	}
	if a.IsNull() != b.IsNull() {
		return false
	}
	eq := a.Equals(b)
	return eq.IsKnown() && eq.True()
}

func isEmpty(v cty.Value) bool {
	if v.IsNull() {
		return true
	}
	t := v.Type()
	return (t.IsListType() || t.IsMapType() || t.IsSetType()) && v.LengthInt() == 0
}

// Action is the action the differences call for.
func (c Comparison) Action() Action {
	action := NoOp
	for _, ac := range c {
		if ac.Update == resource.Replace {
			return Replace
		}
		action = Update
	}
	return action
}

// ReplacePaths lists the attributes that force a replacement.
func (c Comparison) ReplacePaths() []cty.Path {
	var paths []cty.Path
	for _, ac := range c {
		if ac.Update == resource.Replace {
			paths = append(paths, cty.GetAttrPath(ac.Name))
		}
	}
	return paths
}

// Reasons says in words why a replacement is needed, each reason once.
func (c Comparison) Reasons() []string {
	var out []string
	seen := map[string]bool{}
	for _, ac := range c {
		if ac.Update != resource.Replace || seen[ac.Reason] {
			continue
		}
		seen[ac.Reason] = true
		out = append(out, ac.Reason)
	}
	return out
}
