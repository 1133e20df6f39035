package dsl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// varSource is where a variable's value came from, for messages.
type varSource struct {
	what string     // "the default", "-var replicas=...", "BERTH_VAR_replicas"
	rng  *hcl.Range // nil for flags and the environment
}

// assignVariables settles each variable's value. Later sources win:
// default, then BERTH_VAR_name, then the -var-files in order, then -var.
func (l *loader) assignVariables() {
	type candidate struct {
		val cty.Value
		src varSource
		// failed: the given value did not parse; it was reported, and
		// the variable is not "missing" on top of that.
		failed bool
	}
	chosen := map[string]candidate{}
	for _, v := range l.varList {
		if v.def != nil {
			val, diags := v.def.Value(nil)
			l.diags = append(l.diags, diags...)
			chosen[v.name] = candidate{val, varSource{"the default", v.def.Range().Ptr()}, diags.HasErrors()}
		}
	}
	for _, kv := range l.opts.Environ {
		k, raw, ok := strings.Cut(kv, "=")
		name, isVar := strings.CutPrefix(k, envPrefix)
		// The environment is shared with other tools; a variable this
		// configuration does not declare is not a mistake here.
		if !ok || !isVar || l.vars[name] == nil {
			continue
		}
		val, ok := l.parseRaw(l.vars[name], raw, k)
		chosen[name] = candidate{val, varSource{"the environment variable " + k, nil}, !ok}
	}
	for _, path := range l.opts.VarFiles {
		f, diags := l.parser.ParseHCLFile(path)
		l.diags = append(l.diags, diags...)
		if f == nil || f.Body == nil {
			continue
		}
		attrs, diags := f.Body.JustAttributes()
		l.diags = append(l.diags, diags...)
		var list []*hcl.Attribute
		for _, a := range attrs {
			list = append(list, a)
		}
		sortAttrs(list)
		for _, a := range list {
			if l.vars[a.Name] == nil {
				l.undeclared(a.Name, a.NameRange.Ptr(), fmt.Sprintf("%s sets %q", path, a.Name), "remove it from the file")
				continue
			}
			val, diags := a.Expr.Value(nil)
			l.diags = append(l.diags, diags...)
			if !diags.HasErrors() {
				chosen[a.Name] = candidate{val, varSource{path, a.Expr.Range().Ptr()}, false}
			} else {
				chosen[a.Name] = candidate{failed: true}
			}
		}
	}
	flagNames := make([]string, 0, len(l.opts.Vars))
	for name := range l.opts.Vars {
		flagNames = append(flagNames, name)
	}
	sort.Strings(flagNames)
	for _, name := range flagNames {
		what := fmt.Sprintf("-var %s=%s", name, l.opts.Vars[name])
		v := l.vars[name]
		if v == nil {
			l.undeclared(name, nil, what, "remove the -var flag")
			continue
		}
		val, ok := l.parseRaw(v, l.opts.Vars[name], what)
		chosen[name] = candidate{val, varSource{what, nil}, !ok}
	}

	sources := map[string]varSource{}
	for _, v := range l.varList {
		c, ok := chosen[v.name]
		if !ok {
			l.errorf(v.rng.Ptr(), "No value for required variable",
				"var.%s has no default and no value was given. Set it with -var %s=VALUE, in a -var-file, or with the environment variable %s%s, or give it a default.",
				v.name, v.name, envPrefix, v.name)
			l.varVals[v.name] = cty.UnknownVal(v.typ)
			continue
		}
		if c.failed {
			l.varVals[v.name] = cty.UnknownVal(v.typ)
			continue
		}
		l.varVals[v.name] = l.convertVar(v, c.val, c.src)
		sources[v.name] = c.src
	}
	for _, v := range l.varList {
		if src, ok := sources[v.name]; ok {
			l.validateVar(v, src)
		}
	}
}

// undeclared reports a value given for a variable no block declares.
func (l *loader) undeclared(name string, rng *hcl.Range, what, fix string) {
	declared := make([]string, 0, len(l.vars))
	for n := range l.vars {
		declared = append(declared, n)
	}
	detail := fmt.Sprintf("%s, but no variable %q is declared. Declare it with variable %q {}, or %s.", what, name, name, fix)
	if s := suggest(name, declared); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	}
	l.addDiag(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value for undeclared variable", Detail: detail, Subject: rng})
}

// parseRaw reads a value given as a string on the command line or in the
// environment. As in Terraform, it is a literal string for variables of a
// primitive type (converted to number or bool later, which explains a bad
// value better) or without a type, and an HCL expression for lists, maps
// and objects.
func (l *loader) parseRaw(v *variable, raw, what string) (cty.Value, bool) {
	if v.typ.IsPrimitiveType() || v.typ == cty.DynamicPseudoType {
		return cty.StringVal(raw), true
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), fmt.Sprintf("<value for var.%s>", v.name), hcl.InitialPos)
	if !diags.HasErrors() {
		val, vd := expr.Value(nil)
		if !vd.HasErrors() {
			return val, true
		}
		diags = vd
	}
	l.errorf(nil, "Invalid value for variable",
		"%s: the value of var.%s must be an HCL expression of type %s, such as %s: %s",
		what, v.name, typeexpr.TypeString(v.typ), example(v.typ), diags[0].Summary+"; "+diags[0].Detail)
	return cty.NilVal, false
}

func example(ty cty.Type) string {
	switch {
	case ty == cty.Number:
		return "3"
	case ty == cty.Bool:
		return "true"
	case ty == cty.String:
		return `"text"`
	case ty.IsListType(), ty.IsSetType(), ty.IsTupleType():
		return `["a", "b"]`
	}
	return `{ key = "value" }`
}

// convertVar applies the type constraint (and its optional() defaults).
func (l *loader) convertVar(v *variable, val cty.Value, src varSource) cty.Value {
	if v.defaults != nil {
		val = v.defaults.Apply(val)
	}
	cv, err := convert.Convert(val, v.typ)
	if err != nil {
		l.errorf(src.rng, "Invalid value for variable",
			"The value of var.%s from %s is not a valid %s: %s. Give a value of that type.",
			v.name, src.what, typeexpr.TypeString(v.typ), err)
		return cty.UnknownVal(v.typ)
	}
	if cv.IsNull() && !v.nullable {
		l.errorf(src.rng, "Invalid value for variable",
			"var.%s is declared nullable = false, but %s sets it to null. Give a value.", v.name, src.what)
	}
	return cv
}

// validateVar runs the variable's validation rules against its value.
func (l *loader) validateVar(v *variable, src varSource) {
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{v.name: l.varVals[v.name]})},
		Functions: l.funcs,
	}
	for _, rule := range v.validations {
		ok, diags := rule.condition.Value(ctx)
		l.diags = append(l.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		ok, err := convert.Convert(ok, cty.Bool)
		if err != nil || ok.IsNull() {
			l.errorf(rule.condition.Range().Ptr(), "Invalid validation condition",
				"The condition must evaluate to true or false, such as var.%s != \"\".", v.name)
			continue
		}
		if !ok.IsKnown() || ok.True() {
			continue
		}
		msg, diags := rule.message.Value(ctx)
		l.diags = append(l.diags, diags...)
		text := fmt.Sprintf("var.%s is not valid.", v.name)
		if m, err := convert.Convert(msg, cty.String); err == nil && m.IsKnown() && !m.IsNull() {
			text = m.AsString()
		}
		rng := src.rng
		if rng == nil {
			rng = rule.condition.Range().Ptr()
		}
		l.errorf(rng, "Invalid value for variable",
			"%s\n\nThe value of var.%s comes from %s; the rule is at %s.", text, v.name, src.what, where(rule.condition.Range()))
	}
}
