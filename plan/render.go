package plan

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// ANSI colours, used only when the caller says the output is a terminal.
const (
	colReset  = "\x1b[0m"
	colBold   = "\x1b[1m"
	colGreen  = "\x1b[32m"
	colYellow = "\x1b[33m"
	colRed    = "\x1b[31m"
	colCyan   = "\x1b[36m"
)

type painter bool

func (p painter) paint(color, s string) string {
	if !p || s == "" {
		return s
	}
	return color + s + colReset
}

// RenderText writes the plan for people: one block per change with the
// attributes that differ, the reasons for every replacement, drift found on
// the host, and a summary line. With color it uses ANSI colours.
func RenderText(w io.Writer, p *Plan, color bool) error {
	r := &textRenderer{w: w, p: painter(color)}
	changes := 0
	for _, ch := range p.Changes {
		if ch.Action == NoOp {
			continue
		}
		if changes == 0 {
			r.line(0, "berth will perform the following actions:")
			r.line(0, "")
		}
		changes++
		r.change(ch)
		r.line(0, "")
	}
	if changes == 0 && p.Destroy {
		r.line(0, r.p.paint(colGreen+colBold, "Nothing to destroy:")+" the project has no recorded objects on this host.")
	} else if changes == 0 && len(p.OutputChanges()) > 0 {
		r.line(0, r.p.paint(colGreen+colBold, "No changes to objects.")+" Applying records the new output values.")
	} else if changes == 0 {
		r.line(0, r.p.paint(colGreen+colBold, "No changes.")+" The host matches the configuration.")
	} else {
		s := p.Summary()
		r.line(0, fmt.Sprintf("%s %d to add, %d to change, %d to replace, %d to destroy.",
			r.p.paint(colBold, "Plan:"), s.Add, s.Change, s.Replace, s.Destroy))
	}
	if outs := p.OutputChanges(); len(outs) > 0 && !p.Destroy {
		r.line(0, "")
		r.line(0, "Changes to outputs:")
		for _, name := range outs {
			v, declared := p.Outputs[name]
			old, recorded := p.Prior.Outputs[name]
			switch {
			case !declared:
				r.line(1, r.p.paint(colRed, "-")+" "+name+" = "+r.value(old, 1))
			case !recorded:
				r.line(1, r.p.paint(colGreen, "+")+" "+name+" = "+r.value(v, 1))
			default:
				r.line(1, r.p.paint(colYellow, "~")+" "+name+" = "+r.value(old, 1)+" -> "+r.value(v, 1))
			}
		}
	}
	return r.err
}

type textRenderer struct {
	w   io.Writer
	p   painter
	err error
}

func (r *textRenderer) line(indent int, s string) {
	if r.err != nil {
		return
	}
	_, r.err = fmt.Fprintln(r.w, strings.Repeat("  ", indent)+s)
}

var headings = map[Action]string{
	Create:  "will be created",
	Update:  "will be updated in place",
	Replace: "must be replaced",
	Delete:  "will be destroyed",
}

func (r *textRenderer) marker(a Action) string {
	switch a {
	case Create:
		return r.p.paint(colGreen, "+")
	case Update:
		return r.p.paint(colYellow, "~")
	case Replace:
		return r.p.paint(colRed, "-") + "/" + r.p.paint(colGreen, "+")
	case Delete:
		return r.p.paint(colRed, "-")
	}
	return " "
}

func (r *textRenderer) change(ch *Change) {
	head := fmt.Sprintf("# %s %s", r.p.paint(colBold, ch.Addr.String()), headings[ch.Action])
	if len(ch.Reasons) > 0 {
		head += ": " + strings.Join(ch.Reasons, "; ")
	}
	r.line(1, head)
	if ch.Action == Delete && ch.Addr.Kind == resource.KindVolume && ch.DataBytes > 0 {
		r.line(1, r.p.paint(colRed+colBold, fmt.Sprintf("# WARNING: the volume holds %s of data, which will be lost", HumanBytes(ch.DataBytes))))
	}
	label := fmt.Sprintf("%s %q", ch.Addr.Kind, ch.Addr.Name)
	if ch.Addr.Key != resource.NoKey {
		label += " [" + string(ch.Addr.Key) + "]"
	}
	r.line(0, r.marker(ch.Action)+" "+label+" {")
	schema := resource.SchemaOf(ch.Addr.Kind)
	switch ch.Action {
	case Create:
		r.body(2, schema, ch.After, "+", colGreen)
	case Delete:
		r.body(2, schema, ch.Before, "-", colRed)
	default:
		r.diffBody(2, schema, ch)
	}
	r.line(1, "}")
}

// body renders every non-null attribute and block of v with one marker.
func (r *textRenderer) body(indent int, schema *resource.Schema, v cty.Value, mark, color string) {
	names := schema.AttributeNames()
	width := 0
	for _, n := range names {
		if av := v.GetAttr(n); !av.IsKnown() || !av.IsNull() {
			width = max(width, len(n))
		}
	}
	for _, n := range names {
		av := v.GetAttr(n)
		if av.IsKnown() && av.IsNull() {
			continue
		}
		r.line(indent, fmt.Sprintf("%s %-*s = %s", r.p.paint(color, mark), width, n, r.value(av, indent)))
	}
	for _, n := range schema.BlockNames() {
		r.blocks(indent, n, schema.Blocks[n].Schema, v.GetAttr(n), mark, color)
	}
}

func (r *textRenderer) blocks(indent int, name string, schema *resource.Schema, v cty.Value, mark, color string) {
	if v.IsNull() {
		return
	}
	if !v.IsKnown() {
		r.line(indent, fmt.Sprintf("%s %s = (known after apply)", r.p.paint(color, mark), name))
		return
	}
	for _, e := range elements(v) {
		r.line(indent, r.p.paint(color, mark)+" "+name+" {")
		r.body(indent+2, schema, e, mark, color)
		r.line(indent+1, "}")
	}
}

// diffBody renders only what changed between Before and After, each
// attribute that forces the replacement marked so.
func (r *textRenderer) diffBody(indent int, schema *resource.Schema, ch *Change) {
	diff := Diff(schema, ch.Before, ch.After)
	forces := map[string]string{}
	for _, ac := range diff {
		forces[ac.Name] = r.forces(ch, ac)
	}
	hidden := r.attrDiff(indent, schema, ch.Before, ch.After, forces)
	if hidden > 0 {
		r.line(indent, r.p.paint(colCyan, fmt.Sprintf("# (%d unchanged attributes hidden)", hidden)))
	}
}

// attrDiff renders the attributes and blocks that differ between two
// objects of a schema, with the suffix forces[name] after each, and returns
// how many set attributes it left out as unchanged.
func (r *textRenderer) attrDiff(indent int, schema *resource.Schema, before, after cty.Value, forces map[string]string) int {
	names := schema.AttributeNames()
	var changed []string
	hidden := 0
	for _, n := range names {
		b, a := before.GetAttr(n), after.GetAttr(n)
		if a.IsWhollyKnown() && b.IsWhollyKnown() && equal(b, a) || schema.Attributes[n].Computed && !a.IsWhollyKnown() && forces[n] == "" {
			if !b.IsNull() {
				hidden++
			}
			continue
		}
		changed = append(changed, n)
	}
	width := 0
	for _, n := range changed {
		width = max(width, len(n))
	}
	for _, n := range changed {
		b, a := before.GetAttr(n), after.GetAttr(n)
		line := fmt.Sprintf("%s %-*s = %s -> %s", r.p.paint(colYellow, "~"), width, n, r.value(b, indent), r.value(a, indent))
		switch {
		case b.IsNull():
			line = fmt.Sprintf("%s %-*s = %s", r.p.paint(colGreen, "+"), width, n, r.value(a, indent))
		case a.IsKnown() && a.IsNull():
			line = fmt.Sprintf("%s %-*s = %s -> null", r.p.paint(colRed, "-"), width, n, r.value(b, indent))
		}
		r.line(indent, line+forces[n])
	}
	for _, n := range schema.BlockNames() {
		blk := schema.Blocks[n]
		bv, av := before.GetAttr(n), after.GetAttr(n)
		if av.IsWhollyKnown() && bv.IsWhollyKnown() && equal(bv, av) {
			continue
		}
		if blk.Nesting == resource.NestingSingle && !bv.IsNull() && !av.IsNull() && av.IsKnown() {
			r.line(indent, r.p.paint(colYellow, "~")+" "+n+" {"+forces[n])
			r.attrDiff(indent+2, blk.Schema, bv, av, map[string]string{})
			r.line(indent+1, "}")
			continue
		}
		bs, as := elements(bv), elements(av)
		for _, e := range bs {
			if !contains(as, e) {
				r.blocks(indent, n, blk.Schema, e, "-", colRed)
			}
		}
		for _, e := range as {
			if !contains(bs, e) {
				r.blocks(indent, n, blk.Schema, e, "+", colGreen)
			}
		}
		if f := forces[n]; f != "" {
			r.line(indent, "  "+strings.TrimSpace(f)+" ("+n+")")
		}
	}
	return hidden
}

func (r *textRenderer) forces(ch *Change, ac AttrChange) string {
	if ch.Action == Replace && ac.Update == resource.Replace {
		return r.p.paint(colRed, " # forces replacement")
	}
	return ""
}

func elements(v cty.Value) []cty.Value {
	switch {
	case v.IsNull():
		return nil
	case !v.IsKnown():
		return []cty.Value{v}
	case v.Type().IsListType():
		return v.AsValueSlice()
	}
	return []cty.Value{v}
}

func contains(vs []cty.Value, v cty.Value) bool {
	for _, e := range vs {
		if e.IsWhollyKnown() && v.IsWhollyKnown() && e.Equals(v).True() {
			return true
		}
	}
	return false
}

// value renders a value in HCL syntax, unknowns as "(known after apply)".
func (r *textRenderer) value(v cty.Value, _ int) string {
	return FormatValue(v, func(s string) string { return r.p.paint(colCyan, s) })
}

// FormatValue writes a value on one line in HCL syntax: strings quoted,
// collections inline, unknown parts as "(known after apply)" passed through
// unknown (for colouring; nil leaves them plain).
func FormatValue(v cty.Value, unknown func(string) string) string {
	if !v.IsKnown() {
		if unknown == nil {
			return "(known after apply)"
		}
		return unknown("(known after apply)")
	}
	if v.IsNull() {
		return "null"
	}
	t := v.Type()
	switch {
	case t.IsListType() || t.IsSetType() || t.IsTupleType():
		parts := []string{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			parts = append(parts, FormatValue(e, unknown))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case t.IsMapType() || t.IsObjectType():
		if v.LengthInt() == 0 {
			return "{}"
		}
		parts := []string{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			key := k.AsString()
			if !hclsyntax.ValidIdentifier(key) {
				key = strconv.Quote(key)
			}
			parts = append(parts, key+" = "+FormatValue(e, unknown))
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	return strings.TrimSpace(string(hclwrite.TokensForValue(v).Bytes()))
}
