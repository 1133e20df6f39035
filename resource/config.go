package resource

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Config is a loaded configuration: the structure is decoded, expressions
// are not yet evaluated. The planner evaluates each instance once the
// values of what it refers to are known (or known to be unknown), so values
// known only after apply flow through the plan.
type Config struct {
	// Dir is the configuration directory; Project names the set of
	// objects it owns on a host (default: the directory's name).
	Dir     string
	Project string
	// Instances are the expanded resource instances (count and for_each
	// already applied), in no particular order.
	Instances []*Instance
	Outputs   []*Output
	// Hash identifies the configuration's files and input variables, so a
	// saved plan refuses to apply when either changed.
	Hash string
	// Files holds the parsed sources, for rendering diagnostics with
	// snippets.
	Files map[string]*hcl.File
	// Lock maps each image pull reference the lock file (berth.lock.hcl)
	// pins to its digest. Image instances read it when evaluated and give
	// a pinned reference its repo_digest; pins added after loading (what a
	// plan resolved) hold for every evaluation after, the apply's too.
	Lock map[string]string
}

// EvalFunc evaluates a body given the values of the instances it depends
// on: each dependency's object value, possibly holding unknowns.
type EvalFunc func(deps map[Addr]cty.Value) (cty.Value, hcl.Diagnostics)

// Instance is one declared resource instance.
type Instance struct {
	Addr Addr
	// Deps are the instances this one refers to or names in depends_on.
	// A reference to a counted resource as a whole depends on every
	// instance of it.
	Deps      []Addr
	DeclRange hcl.Range
	// Eval returns an object of the kind's ImpliedType: defaults filled
	// in, paths made absolute, and every known value validated.
	Eval EvalFunc
}

// Output is a declared output value.
type Output struct {
	Name        string
	Description string
	Sensitive   bool
	Deps        []Addr
	DeclRange   hcl.Range
	Eval        EvalFunc
}

// Instance returns the instance at addr, or nil.
func (c *Config) Instance(addr Addr) *Instance {
	for _, in := range c.Instances {
		if in.Addr == addr {
			return in
		}
	}
	return nil
}

// EvalWith evaluates the instance with the values of its dependencies taken
// from values; dependencies missing there are treated as unknown.
func (in *Instance) EvalWith(values map[Addr]cty.Value) (cty.Value, hcl.Diagnostics) {
	return in.Eval(pick(in.Deps, values))
}

// EvalWith evaluates the output as Instance.EvalWith does.
func (o *Output) EvalWith(values map[Addr]cty.Value) (cty.Value, hcl.Diagnostics) {
	return o.Eval(pick(o.Deps, values))
}

func pick(deps []Addr, values map[Addr]cty.Value) map[Addr]cty.Value {
	out := make(map[Addr]cty.Value, len(deps))
	for _, d := range deps {
		if v, ok := values[d]; ok {
			out[d] = v
		}
	}
	return out
}
