package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"reflect"

	"github.com/zclconf/go-cty/cty"
)

// FormatVersion is the version of the JSON plan format documented in
// docs/plan-json.md. It changes only when a field changes meaning.
const FormatVersion = "1"

// JSONPlan is the machine-readable plan: what `berth plan -json` prints
// and what plan files hold.
type JSONPlan struct {
	FormatVersion string                `json:"format_version"`
	Project       string                `json:"project"`
	Lineage       string                `json:"lineage"`
	Serial        uint64                `json:"serial"`
	ConfigHash    string                `json:"config_hash"`
	Destroy       bool                  `json:"destroy,omitempty"`
	Changes       []JSONChange          `json:"changes"`
	Summary       Summary               `json:"summary"`
	Outputs       map[string]JSONOutput `json:"outputs,omitempty"`
}

// JSONChange is one change. Values are JSON with unknown parts written as
// null; the *_unknown mirror marks them true.
type JSONChange struct {
	Address      string     `json:"address"`
	Kind         string     `json:"kind"`
	Name         string     `json:"name"`
	Key          string     `json:"key,omitempty"`
	Action       Action     `json:"action"`
	Reasons      []string   `json:"reasons,omitempty"`
	ReplacePaths [][]string `json:"replace_paths,omitempty"`
	DependsOn    []string   `json:"depends_on,omitempty"`
	DataBytes    int64      `json:"data_bytes,omitempty"`
	Before       any        `json:"before"`
	After        any        `json:"after"`
	AfterUnknown any        `json:"after_unknown,omitempty"`
}

// JSONOutput is an output value, or unknown until apply.
type JSONOutput struct {
	Value   any  `json:"value"`
	Unknown bool `json:"unknown,omitempty"`
}

// JSON converts the plan to its machine-readable form.
func (p *Plan) JSON() *JSONPlan {
	jp := &JSONPlan{
		FormatVersion: FormatVersion,
		Project:       p.Project,
		Lineage:       p.Lineage,
		Serial:        p.Serial,
		ConfigHash:    p.ConfigHash,
		Destroy:       p.Destroy,
		Changes:       []JSONChange{},
		Summary:       p.Summary(),
	}
	for _, ch := range p.Changes {
		jc := JSONChange{
			Address:   ch.Addr.String(),
			Kind:      string(ch.Addr.Kind),
			Name:      ch.Addr.Name,
			Key:       string(ch.Addr.Key),
			Action:    ch.Action,
			Reasons:   ch.Reasons,
			DataBytes: ch.DataBytes,
		}
		for _, path := range ch.ReplacePaths {
			jc.ReplacePaths = append(jc.ReplacePaths, pathStrings(path))
		}
		for _, d := range ch.Deps {
			jc.DependsOn = append(jc.DependsOn, d.String())
		}
		jc.Before, _ = toJSON(ch.Before)
		jc.After, jc.AfterUnknown = toJSON(ch.After)
		jp.Changes = append(jp.Changes, jc)
	}
	if len(p.Outputs) > 0 {
		jp.Outputs = map[string]JSONOutput{}
		for name, v := range p.Outputs {
			val, unknown := toJSON(v)
			jp.Outputs[name] = JSONOutput{Value: val, Unknown: unknown == true}
		}
	}
	return jp
}

// RenderJSON writes the plan as indented JSON.
func RenderJSON(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p.JSON())
}

func pathStrings(p cty.Path) []string {
	var out []string
	for _, step := range p {
		switch s := step.(type) {
		case cty.GetAttrStep:
			out = append(out, s.Name)
		case cty.IndexStep:
			out = append(out, fmt.Sprint(s.Key.GoString()))
		}
	}
	return out
}

// toJSON converts a cty value to plain JSON-able Go values, unknowns as nil,
// with a mirror that is true where the value is unknown (nil if nothing
// is).
func toJSON(v cty.Value) (val any, unknown any) {
	if !v.IsKnown() {
		return nil, true
	}
	if v.IsNull() {
		return nil, nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), nil
	case t == cty.Bool:
		return v.True(), nil
	case t == cty.Number:
		return numberJSON(v.AsBigFloat()), nil
	case t.IsListType() || t.IsSetType() || t.IsTupleType():
		vals, masks := []any{}, []any{}
		anyUnknown := false
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			ev, em := toJSON(e)
			vals = append(vals, ev)
			masks = append(masks, em)
			anyUnknown = anyUnknown || em != nil
		}
		if !anyUnknown {
			return vals, nil
		}
		return vals, masks
	case t.IsMapType() || t.IsObjectType():
		vals, masks := map[string]any{}, map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			ev, em := toJSON(e)
			vals[k.AsString()] = ev
			if em != nil {
				masks[k.AsString()] = em
			}
		}
		if len(masks) == 0 {
			return vals, nil
		}
		return vals, masks
	}
	return nil, nil
}

func numberJSON(f *big.Float) json.Number {
	if f.IsInt() {
		i, _ := f.Int(nil)
		return json.Number(i.String())
	}
	return json.Number(f.Text('g', -1))
}

// SavedPlan is what `berth plan -out FILE` writes: the plan and the inputs
// needed to load the same configuration again (the CLI's business).
type SavedPlan struct {
	Version int             `json:"berth_plan_file"`
	Inputs  json.RawMessage `json:"inputs"`
	Plan    *JSONPlan       `json:"plan"`
}

const savedPlanVersion = 1

// WriteFile saves the plan with the caller's inputs.
func WriteFile(w io.Writer, p *Plan, inputs any) error {
	in, err := json.Marshal(inputs)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(&SavedPlan{Version: savedPlanVersion, Inputs: in, Plan: p.JSON()})
}

// ReadFile reads a saved plan.
func ReadFile(r io.Reader) (*SavedPlan, error) {
	var sp SavedPlan
	if err := json.NewDecoder(r).Decode(&sp); err != nil {
		return nil, fmt.Errorf("not a berth plan file: %w", err)
	}
	if sp.Version != savedPlanVersion || sp.Plan == nil {
		return nil, fmt.Errorf("not a berth plan file of version %d (found version %d)", savedPlanVersion, sp.Version)
	}
	return &sp, nil
}

// CheckSaved compares a plan computed now with a saved one and says why the
// saved plan may no longer be applied: the configuration, the state or the
// host changed since it was made.
func (p *Plan) CheckSaved(saved *SavedPlan) error {
	sp := saved.Plan
	switch {
	case sp.Project != p.Project:
		return fmt.Errorf("the plan is for project %q, not %q", sp.Project, p.Project)
	case sp.ConfigHash != p.ConfigHash:
		return fmt.Errorf("the configuration or its variables changed since the plan was saved; run berth plan again")
	case sp.Lineage != p.Lineage || sp.Serial != p.Serial:
		return fmt.Errorf("the state changed since the plan was saved (serial %d, now %d); run berth plan again", sp.Serial, p.Serial)
	}
	now := p.JSON()
	old := map[string]JSONChange{}
	for _, c := range sp.Changes {
		old[c.Address] = c
	}
	for _, c := range now.Changes {
		o, ok := old[c.Address]
		if !ok {
			return fmt.Errorf("%s now needs %s, which the saved plan does not include; run berth plan again", c.Address, c.Action)
		}
		switch {
		case o.Action != c.Action:
			return fmt.Errorf("%s was planned as %s and now needs %s (the host changed since the plan was saved); run berth plan again", c.Address, o.Action, c.Action)
		case !sameJSON(o.After, c.After) || !sameJSON(o.AfterUnknown, c.AfterUnknown):
			return fmt.Errorf("%s would now be %s differently than the saved plan says (the host changed since); run berth plan again", c.Address, pastTense(c.Action))
		case o.DataBytes != c.DataBytes:
			return fmt.Errorf("%s now holds %s of data, the saved plan saw %s; run berth plan again", c.Address, HumanBytes(c.DataBytes), HumanBytes(o.DataBytes))
		}
		delete(old, c.Address)
	}
	for addr := range old {
		return fmt.Errorf("the saved plan includes %s, which is no longer needed; run berth plan again", addr)
	}
	return nil
}

// sameJSON compares two JSON-able values as they would be written, so a
// value read back from a file equals the one computed now.
func sameJSON(a, b any) bool {
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false
	}
	var av, bv any
	_ = json.Unmarshal(ab, &av)
	_ = json.Unmarshal(bb, &bv)
	return reflect.DeepEqual(av, bv)
}

func pastTense(a Action) string {
	switch a {
	case Create:
		return "created"
	case Update:
		return "updated"
	case Replace:
		return "replaced"
	case Delete:
		return "deleted"
	}
	return "kept"
}
