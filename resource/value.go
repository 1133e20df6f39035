package resource

import (
	"fmt"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// Decode converts a wholly known object value of a kind into its Go spec
// (ContainerSpec, ImageSpec, ...). Null attributes and absent blocks decode
// to zero values, so drivers need no pointer fields.
func Decode(v cty.Value, target any) error {
	if !v.IsWhollyKnown() {
		return fmt.Errorf("decode: value is not wholly known")
	}
	zeroed, err := cty.Transform(v, func(_ cty.Path, v cty.Value) (cty.Value, error) {
		if v.IsNull() {
			return zeroOf(v.Type()), nil
		}
		return v, nil
	})
	if err != nil {
		return err
	}
	return gocty.FromCtyValue(zeroed, target)
}

func zeroOf(t cty.Type) cty.Value {
	switch {
	case t == cty.String:
		return cty.StringVal("")
	case t == cty.Number:
		return cty.Zero
	case t == cty.Bool:
		return cty.False
	case t.IsListType():
		return cty.ListValEmpty(t.ElementType())
	case t.IsMapType():
		return cty.MapValEmpty(t.ElementType())
	case t.IsSetType():
		return cty.SetValEmpty(t.ElementType())
	case t.IsObjectType():
		attrs := map[string]cty.Value{}
		for name, at := range t.AttributeTypes() {
			attrs[name] = zeroOf(at)
		}
		return cty.ObjectVal(attrs)
	}
	return cty.NullVal(t)
}

// WithAttrs returns the object v with the given attributes replaced: how a
// driver fills in computed attributes of the desired value it was given.
func WithAttrs(v cty.Value, set map[string]cty.Value) cty.Value {
	attrs := v.AsValueMap()
	if attrs == nil {
		attrs = map[string]cty.Value{}
	}
	for k, nv := range set {
		attrs[k] = nv
	}
	return cty.ObjectVal(attrs)
}

// StringMapVal is cty.MapVal of strings that accepts an empty map.
func StringMapVal(m map[string]string) cty.Value {
	if len(m) == 0 {
		return cty.MapValEmpty(cty.String)
	}
	vals := make(map[string]cty.Value, len(m))
	for k, v := range m {
		vals[k] = cty.StringVal(v)
	}
	return cty.MapVal(vals)
}

// Object is one resource instance as it exists: its address, its value (the
// configured attributes with the computed ones filled in by the driver) and
// the addresses it depended on when it was applied, which order its
// deletion.
type Object struct {
	Addr  Addr
	Value cty.Value
	Deps  []Addr
}

// Health is what observing a recorded object found.
type Health int

const (
	// Healthy: the object exists and is as recorded.
	Healthy Health = iota
	// Missing: the object is gone; the next apply creates it again.
	Missing
	// Degraded: the object exists but not as recorded (a paused
	// container); the next apply replaces it.
	Degraded
	// Stopped: the object exists as recorded but does not run (a container
	// that exited); the next apply starts it again in place, keeping what
	// it holds, as compose up does.
	Stopped
)

// Observation is the result of looking at a recorded object on the host.
type Observation struct {
	Health Health
	// Reason says what was found, for the plan: "container exited with
	// status 137", "bridge berth-3fa1 was deleted".
	Reason string
	// DataBytes is the size of what a volume holds; deleting a volume with
	// data needs an explicit flag.
	DataBytes int64
}

// Conform brings a recorded value to the schema's current type: attributes
// and blocks the schema gained since the value was recorded are added as
// null (an empty list for list blocks), ones it lost are dropped, and
// values convert where the type widened. A state written by an older berth
// then plans as if the new attributes were never set — no panic, no
// spurious diff.
func Conform(schema *Schema, v cty.Value) cty.Value {
	if v.IsNull() || !v.IsKnown() || !v.Type().IsObjectType() {
		return cty.NullVal(schema.ImpliedType())
	}
	out := map[string]cty.Value{}
	for name, a := range schema.Attributes {
		out[name] = cty.NullVal(a.Type)
		if v.Type().HasAttribute(name) {
			if cv, err := convert.Convert(v.GetAttr(name), a.Type); err == nil {
				out[name] = cv
			}
		}
	}
	for name, b := range schema.Blocks {
		et := b.Schema.ImpliedType()
		var old cty.Value
		if v.Type().HasAttribute(name) {
			old = v.GetAttr(name)
		}
		switch {
		case b.Nesting == NestingSingle && old != cty.NilVal:
			out[name] = Conform(b.Schema, old)
		case b.Nesting == NestingSingle:
			out[name] = cty.NullVal(et)
		case old == cty.NilVal || old.IsNull() || !old.CanIterateElements() || old.LengthInt() == 0:
			out[name] = cty.ListValEmpty(et)
		default:
			var elems []cty.Value
			for it := old.ElementIterator(); it.Next(); {
				_, e := it.Element()
				elems = append(elems, Conform(b.Schema, e))
			}
			out[name] = cty.ListVal(elems)
		}
	}
	return cty.ObjectVal(out)
}
