package dsl

import (
	"fmt"
	"math/big"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// staticContext is what count, for_each and static locals may use:
// variables, the static locals evaluated so far, and functions.
func (l *loader) staticContext() *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": l.varObject(), "local": l.staticLocals(), "path": l.pathObject()},
		Functions: l.funcs,
	}
}

// pathObject is Terraform's path.module and path.root: both the
// configuration directory, as berth has no nested modules yet.
func (l *loader) pathObject() cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(l.dir), "root": cty.StringVal(l.dir)})
}

func (l *loader) varObject() cty.Value {
	if len(l.varVals) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(l.varVals)
}

func (l *loader) staticLocals() cty.Value {
	vals := map[string]cty.Value{}
	for _, lo := range l.localList {
		if lo.static && lo.val != cty.NilVal {
			vals[lo.name] = lo.val
		}
	}
	return cty.ObjectVal(vals)
}

// evalLocal evaluates a local in ctx; a local that cannot be evaluated
// (a bad reference, a cycle) is DynamicVal so its users are not blamed.
// It touches no loader state: the applier evaluates instances in parallel.
func evalLocal(lo *local, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	if lo.bad || lo.cyclic {
		return cty.DynamicVal, nil
	}
	v, diags := lo.attr.Expr.Value(ctx)
	if diags.HasErrors() {
		return cty.DynamicVal, diags
	}
	return v, diags
}

// expand evaluates count and for_each and creates the instances.
func (l *loader) expand(cfg *resource.Config) {
	ctx := l.staticContext()
	for _, d := range l.declList {
		switch {
		case d.count != nil && d.forEach != nil:
			l.errorf(d.forEach.NameRange.Ptr(), "Invalid combination of count and for_each",
				"count and for_each cannot both be set on %s; count makes numbered copies, for_each one copy per key. Keep one.", d.addr)
			d.expandFailed = true
		case d.count != nil:
			d.keys, d.expandFailed = l.countKeys(d, ctx)
		case d.forEach != nil:
			d.keys, d.expandFailed = l.forEachKeys(d, ctx)
		default:
			d.keys = []instKey{{key: resource.NoKey}}
		}
	}
	for _, d := range l.declList {
		deps := l.instanceDeps(d.deps)
		for _, k := range d.keys {
			cfg.Instances = append(cfg.Instances, &resource.Instance{
				Addr:      resource.Addr{Kind: d.addr.Kind, Name: d.addr.Name, Key: k.key},
				Deps:      deps,
				DeclRange: d.rng,
				Eval: func(deps map[resource.Addr]cty.Value) (cty.Value, hcl.Diagnostics) {
					return l.evalInstance(d, k, deps)
				},
			})
		}
	}
	for _, o := range l.outputs {
		if o.value == nil {
			continue
		}
		cfg.Outputs = append(cfg.Outputs, &resource.Output{
			Name:        o.name,
			Description: o.description,
			Sensitive:   o.sensitive,
			Deps:        l.instanceDeps(l.resolve(o.refs)),
			DeclRange:   o.rng,
			Eval: func(deps map[resource.Addr]cty.Value) (cty.Value, hcl.Diagnostics) {
				ctx, diags := l.evalContext(o.refs, deps)
				v, d := o.value.Value(ctx)
				return v, append(diags, d...)
			},
		})
	}
}

// instanceDeps expands resource-level dependencies to every instance of
// each, sorted.
func (l *loader) instanceDeps(deps map[resource.Addr]hcl.Range) []resource.Addr {
	var out []resource.Addr
	for a := range deps {
		d := l.decls[a]
		for _, k := range d.keys {
			out = append(out, resource.Addr{Kind: a.Kind, Name: a.Name, Key: k.key})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// staticOnly diagnoses a count or for_each that depends on a resource:
// the number of instances must be known before anything is applied.
func (l *loader) staticOnly(d *decl, a *hcl.Attribute) bool {
	rs := newRefSet()
	l.collect(rs, scope{}, a.Expr)
	deps := l.resolve(rs)
	if len(deps) == 0 {
		return true
	}
	addrs := make([]string, 0, len(deps))
	for dep := range deps {
		addrs = append(addrs, dep.String())
	}
	sort.Strings(addrs)
	l.errorf(a.Expr.Range().Ptr(), fmt.Sprintf("Invalid %s argument", a.Name),
		"The %s of %s depends on %s, which is known only after apply. %s may use only variables, locals that use no resource, and functions, because the number of instances must be known to plan.",
		a.Name, d.addr, addrs[0], a.Name)
	return false
}

func (l *loader) countKeys(d *decl, ctx *hcl.EvalContext) ([]instKey, bool) {
	if d.bad || !l.staticOnly(d, d.count) {
		return nil, true
	}
	v, diags := d.count.Expr.Value(ctx)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return nil, true
	}
	n, err := convert.Convert(v, cty.Number)
	bad := func(why string) ([]instKey, bool) {
		l.errorf(d.count.Expr.Range().Ptr(), "Invalid count argument",
			"count must be a whole number of zero or more, such as 3; %s.", why)
		return nil, true
	}
	switch {
	case err != nil:
		return bad(fmt.Sprintf("got a %s", v.Type().FriendlyName()))
	case n.IsNull():
		return bad("got null")
	case !n.IsKnown():
		return bad("its value is not known")
	}
	i, acc := n.AsBigFloat().Int64()
	if acc != big.Exact || i < 0 {
		return bad(fmt.Sprintf("got %s", n.AsBigFloat().Text('f', -1)))
	}
	keys := make([]instKey, i)
	for j := range keys {
		keys[j] = instKey{key: resource.IntKey(j), index: j, suffix: fmt.Sprintf("-%d", j)}
	}
	return keys, false
}

func (l *loader) forEachKeys(d *decl, ctx *hcl.EvalContext) ([]instKey, bool) {
	if d.bad || !l.staticOnly(d, d.forEach) {
		return nil, true
	}
	v, diags := d.forEach.Expr.Value(ctx)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return nil, true
	}
	bad := func(why string) ([]instKey, bool) {
		l.errorf(d.forEach.Expr.Range().Ptr(), "Invalid for_each argument",
			"for_each must be a map, or a set of strings; %s.", why)
		return nil, true
	}
	ty := v.Type()
	switch {
	case v.IsNull():
		return bad("got null")
	case !v.IsWhollyKnown():
		return bad("its value is not known")
	case ty.IsSetType():
		if !ty.ElementType().Equals(cty.String) {
			return bad(fmt.Sprintf("got a %s", ty.FriendlyName()))
		}
	case ty.IsMapType() || ty.IsObjectType():
	case ty.IsListType() || ty.IsTupleType():
		return bad(fmt.Sprintf("got a %s. Convert a list of strings with toset(...)", ty.FriendlyName()))
	default:
		return bad(fmt.Sprintf("got a %s", ty.FriendlyName()))
	}
	var keys []instKey
	for it := v.ElementIterator(); it.Next(); {
		k, val := it.Element()
		if ty.IsSetType() {
			if k.IsNull() {
				return bad("the set holds null")
			}
			val = k
		}
		s := k.AsString()
		keys = append(keys, instKey{key: resource.StringKey(s), eachKey: s, eachValue: val, suffix: "-" + sanitize(s)})
	}
	return keys, false
}

// resourceValue is what a reference to a whole resource evaluates to: its
// object, a tuple of instance objects for count, an object keyed by key
// for for_each. Instances absent from deps are unknown.
func (l *loader) resourceValue(d *decl, deps map[resource.Addr]cty.Value) cty.Value {
	if d.expandFailed {
		return cty.DynamicVal
	}
	inst := func(k resource.Key) cty.Value {
		if v, ok := deps[resource.Addr{Kind: d.addr.Kind, Name: d.addr.Name, Key: k}]; ok {
			return v
		}
		return cty.UnknownVal(d.schema.ImpliedType())
	}
	switch {
	case d.count != nil:
		vals := make([]cty.Value, len(d.keys))
		for i, k := range d.keys {
			vals[i] = inst(k.key)
		}
		return cty.TupleVal(vals)
	case d.forEach != nil:
		vals := map[string]cty.Value{}
		for _, k := range d.keys {
			vals[k.eachKey] = inst(k.key)
		}
		return cty.ObjectVal(vals)
	}
	return inst(resource.NoKey)
}

// evalContext builds the scope of an expression set: variables, the
// resources it refers to, and the locals it needs, evaluated here because
// they may use resources.
func (l *loader) evalContext(rs *refSet, deps map[resource.Addr]cty.Value) (*hcl.EvalContext, hcl.Diagnostics) {
	byKind := map[resource.Kind]map[string]cty.Value{}
	for _, d := range l.declList {
		if byKind[d.addr.Kind] == nil {
			byKind[d.addr.Kind] = map[string]cty.Value{}
		}
		byKind[d.addr.Kind][d.addr.Name] = l.resourceValue(d, deps)
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": l.varObject(), "path": l.pathObject()}, Functions: l.funcs}
	for k, m := range byKind {
		ctx.Variables[string(k)] = cty.ObjectVal(m)
	}
	var diags hcl.Diagnostics
	locals := map[string]cty.Value{}
	for _, n := range l.neededLocals(rs) {
		lo := l.locals[n]
		if lo.static {
			locals[n] = lo.val
			continue
		}
		ctx.Variables["local"] = cty.ObjectVal(locals)
		v, d := evalLocal(lo, ctx)
		locals[n] = v
		diags = append(diags, d...)
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	return ctx, diags
}

// evalInstance evaluates one instance of a resource.
func (l *loader) evalInstance(d *decl, k instKey, deps map[resource.Addr]cty.Value) (cty.Value, hcl.Diagnostics) {
	ctx, diags := l.evalContext(d.refs, deps)
	switch {
	case d.count != nil:
		ctx.Variables["count"] = cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(int64(k.index))})
	case d.forEach != nil:
		ctx.Variables["each"] = cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(k.eachKey), "value": k.eachValue})
	}
	sep := "-"
	if d.addr.Kind == resource.KindImage {
		sep = "/"
	}
	name := cty.StringVal(l.project + sep + d.addr.Name + k.suffix)
	v, bd := l.evalBody(d.body, ctx, map[string]cty.Value{"name": name})
	if d.addr.Kind == resource.KindImage {
		v = pin(l.lock, v)
	}
	return v, append(diags, bd...)
}

// evalBody evaluates a decoded body into an object of exactly its
// schema's implied type: values converted, defaults filled in, paths made
// absolute, computed attributes unknown, known values validated.
func (l *loader) evalBody(b *body, ctx *hcl.EvalContext, defaults map[string]cty.Value) (cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	vals := map[string]cty.Value{}
	for _, name := range b.schema.AttributeNames() {
		at := b.schema.Attributes[name]
		a := b.attrs[name]
		v := cty.NullVal(at.Type)
		if a != nil {
			raw, d := a.Expr.Value(ctx)
			diags = append(diags, d...)
			if d.HasErrors() {
				raw = cty.UnknownVal(at.Type)
			}
			cv, err := convert.Convert(raw, at.Type)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Incorrect attribute value type",
					Detail: fmt.Sprintf("Inappropriate value for attribute %q: %s. Give a value of type %s, such as %s.",
						name, err, typeexpr.TypeString(at.Type), example(at.Type)),
					Subject:     a.Expr.Range().Ptr(),
					Expression:  a.Expr,
					EvalContext: ctx,
				})
				cv = cty.UnknownVal(at.Type)
			}
			v = cv
		}
		if v.IsNull() {
			switch {
			case defaults[name] != cty.NilVal:
				v = defaults[name]
			case at.Default != cty.NilVal:
				v = at.Default
			case at.Computed:
				v = cty.UnknownVal(at.Type)
			}
		}
		if at.Path && v.IsKnown() && !v.IsNull() && !filepath.IsAbs(v.AsString()) {
			v = cty.StringVal(filepath.Join(l.dir, v.AsString()))
		}
		if at.Validate != nil && v.IsKnown() && !v.IsNull() {
			if err := at.Validate(v); err != nil {
				rng := b.rng
				if a != nil {
					rng = a.Expr.Range()
				}
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("Invalid value for %q", name),
					Detail:   sentence(name, err.Error()),
					Subject:  rng.Ptr(),
				})
			}
		}
		vals[name] = v
	}
	for _, name := range b.schema.BlockNames() {
		nested := b.schema.Blocks[name]
		ty := nested.Schema.ImpliedType()
		var objs []cty.Value
		for _, nb := range b.blocks[name] {
			o, d := l.evalBody(nb, ctx, nil)
			diags = append(diags, d...)
			objs = append(objs, o)
		}
		switch {
		case nested.Nesting == resource.NestingSingle && len(objs) == 0:
			vals[name] = cty.NullVal(ty)
		case nested.Nesting == resource.NestingSingle:
			vals[name] = objs[0]
		case len(objs) == 0:
			vals[name] = cty.ListValEmpty(ty)
		default:
			vals[name] = cty.ListVal(objs)
		}
	}
	obj := cty.ObjectVal(vals)
	if b.schema.Check != nil {
		for _, e := range b.schema.Check(obj) {
			rng := b.rng
			if len(e.Path) > 0 {
				if step, ok := e.Path[0].(cty.GetAttrStep); ok && b.attrs[step.Name] != nil {
					rng = b.attrs[step.Name].Expr.Range()
				}
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Invalid %s", b.what),
				Detail:   sentence("", e.Msg),
				Subject:  rng.Ptr(),
			})
		}
	}
	return obj, diags
}

// checkAll evaluates every local, instance and output once with every
// resource unknown, so mistakes in literal values are reported by Load.
func (l *loader) checkAll(cfg *resource.Config) {
	unknown := map[resource.Addr]cty.Value{}
	all := newRefSet()
	for _, lo := range l.localList {
		all.locals[lo.name] = hcl.Range{}
	}
	_, diags := l.evalContext(all, unknown)
	l.diags = append(l.diags, diags...)
	for _, in := range cfg.Instances {
		if l.decls[in.Addr.Resource()].bad {
			continue
		}
		_, diags := in.Eval(unknown)
		l.diags = append(l.diags, diags...)
	}
	for _, o := range l.outputs {
		if o.bad || o.value == nil {
			continue
		}
		ctx, diags := l.evalContext(o.refs, unknown)
		l.diags = append(l.diags, diags...)
		_, diags = o.value.Value(ctx)
		l.diags = append(l.diags, diags...)
	}
}
