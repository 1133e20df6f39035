package dsl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// fileSchema lists the top-level blocks. hcl itself reports any other
// block type, with a "Did you mean" suggestion.
var fileSchema = func() *hcl.BodySchema {
	s := &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "output", LabelNames: []string{"name"}},
	}}
	for _, k := range resource.Kinds {
		s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: string(k), LabelNames: []string{"name"}})
	}
	return s
}()

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"}, {Name: "nullable"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "condition", Required: true}, {Name: "error_message", Required: true}},
}

var outputSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "value", Required: true}, {Name: "description"}, {Name: "sensitive"}, {Name: "depends_on"}},
}

// variable is a declared input variable.
type variable struct {
	name        string
	rng         hcl.Range
	typ         cty.Type
	defaults    *typeexpr.Defaults
	def         hcl.Expression
	nullable    bool
	validations []*validation
}

type validation struct {
	condition, message hcl.Expression
}

// local is one named value of a locals block.
type local struct {
	name string
	attr *hcl.Attribute
	refs *refSet
	// bad locals had a reference error: they evaluate to DynamicVal, so
	// their users are not blamed for the same mistake again.
	bad, cyclic bool
	// static locals use no resource: evaluated once at load, usable in
	// count and for_each.
	static bool
	val    cty.Value
}

type output struct {
	name        string
	rng         hcl.Range
	value       hcl.Expression
	description string
	sensitive   bool
	dependsOn   *hcl.Attribute
	refs        *refSet
	bad         bool
}

// decl is one resource block before expansion.
type decl struct {
	addr      resource.Addr
	schema    *resource.Schema
	body      *body
	rng       hcl.Range
	count     *hcl.Attribute
	forEach   *hcl.Attribute
	dependsOn *hcl.Attribute
	refs      *refSet
	// deps are the resources this one needs, through locals and
	// depends_on included, with the range that introduced each.
	deps map[resource.Addr]hcl.Range
	// keys are the expanded instances; expandFailed means count or
	// for_each could not be evaluated, so no instances exist.
	keys         []instKey
	expandFailed bool
	bad          bool
}

// instKey is one instance of a decl: its address key and the values of
// count.index or each.key / each.value.
type instKey struct {
	key       resource.Key
	index     int
	eachKey   string
	eachValue cty.Value
	// suffix is appended to default names: "-0", "-eu".
	suffix string
}

// body is a block body decoded against a schema, expressions unevaluated.
type body struct {
	schema *resource.Schema
	what   string // "container", "mount block": for messages
	attrs  hcl.Attributes
	blocks map[string][]*body
	rng    hcl.Range
}

func (l *loader) decodeFile(f *hcl.File) {
	content, diags := f.Body.Content(fileSchema)
	for _, d := range diags {
		switch d.Summary {
		case "Unsupported block type":
			d.Detail += " A berth file holds variable, locals, output, image, network, volume and container blocks."
		case "Unsupported argument":
			d.Detail += " Arguments belong inside a block; to name a value, use a locals block or a variable."
		default:
			if strings.HasPrefix(d.Summary, "Extraneous label for ") || strings.HasPrefix(d.Summary, "Missing name for ") {
				d.Detail += " Write the block as TYPE \"NAME\" { ... }, where NAME is how references name it, such as container.NAME."
			}
		}
	}
	l.diags = append(l.diags, diags...)
	for _, b := range content.Blocks {
		switch b.Type {
		case "variable":
			l.decodeVariable(b)
		case "locals":
			l.decodeLocals(b)
		case "output":
			l.decodeOutput(b)
		default:
			l.decodeResource(b)
		}
	}
}

// checkLabel diagnoses a block name that cannot appear in a reference.
func (l *loader) checkLabel(b *hcl.Block) bool {
	if hclsyntax.ValidIdentifier(b.Labels[0]) {
		return true
	}
	prefix := b.Type
	if prefix == "variable" {
		prefix = "var"
	}
	l.errorf(&b.LabelRanges[0], fmt.Sprintf("Invalid %s name", b.Type),
		"%q cannot be used in references such as %s.NAME: a name starts with a letter or underscore and holds only letters, digits, underscores and dashes. Rename the block.",
		b.Labels[0], prefix)
	return false
}

func (l *loader) duplicate(what, name string, prev, rng hcl.Range) {
	article := "A"
	if strings.ContainsRune("aeiou", rune(what[0])) {
		article = "An"
	}
	l.errorf(&rng, fmt.Sprintf("Duplicate %s", what),
		"%s %s named %q was already declared at %s. Names must be unique; rename or remove one of them.",
		article, what, name, where(prev))
}

func (l *loader) decodeVariable(b *hcl.Block) {
	if !l.checkLabel(b) {
		return
	}
	name := b.Labels[0]
	if prev := l.vars[name]; prev != nil {
		l.duplicate("variable", name, prev.rng, b.DefRange)
		return
	}
	v := &variable{name: name, rng: b.DefRange, typ: cty.DynamicPseudoType, nullable: true}
	l.vars[name] = v
	l.varList = append(l.varList, v)
	content, diags := b.Body.Content(variableSchema)
	l.diags = append(l.diags, diags...)
	if a := content.Attributes["type"]; a != nil {
		ty, defaults, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
		l.diags = append(l.diags, diags...)
		if !diags.HasErrors() {
			v.typ, v.defaults = ty, defaults
		}
	}
	if a := content.Attributes["default"]; a != nil {
		v.def = a.Expr
	}
	if a := content.Attributes["nullable"]; a != nil {
		if b, ok := l.literal(a, cty.Bool); ok {
			v.nullable = b.True()
		}
	}
	if a := content.Attributes["description"]; a != nil {
		l.literal(a, cty.String)
	}
	if a := content.Attributes["sensitive"]; a != nil {
		l.literal(a, cty.Bool)
	}
	for _, vb := range content.Blocks {
		vc, diags := vb.Body.Content(validationSchema)
		l.diags = append(l.diags, diags...)
		if vc.Attributes["condition"] != nil && vc.Attributes["error_message"] != nil {
			v.validations = append(v.validations, &validation{vc.Attributes["condition"].Expr, vc.Attributes["error_message"].Expr})
		}
	}
}

// literal evaluates an attribute that may not refer to anything, such as a
// description, and reports whether it is a known, non-null value of ty.
func (l *loader) literal(a *hcl.Attribute, ty cty.Type) (cty.Value, bool) {
	v, diags := a.Expr.Value(nil)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil || cv.IsNull() || !cv.IsKnown() {
		msg := "a value is required"
		if err != nil {
			msg = err.Error()
		}
		l.errorf(a.Expr.Range().Ptr(), "Incorrect attribute value type",
			"Inappropriate value for attribute %q: %s. Write a literal %s here.", a.Name, msg, ty.FriendlyName())
		return cty.NilVal, false
	}
	return cv, true
}

func (l *loader) decodeLocals(b *hcl.Block) {
	attrs, diags := b.Body.JustAttributes()
	l.diags = append(l.diags, diags...)
	var list []*hcl.Attribute
	for _, a := range attrs {
		list = append(list, a)
	}
	sortAttrs(list)
	for _, a := range list {
		if prev := l.locals[a.Name]; prev != nil {
			l.duplicate("local value", a.Name, prev.attr.NameRange, a.NameRange)
			continue
		}
		lo := &local{name: a.Name, attr: a}
		l.locals[a.Name] = lo
		l.localList = append(l.localList, lo)
	}
}

func sortAttrs(list []*hcl.Attribute) {
	sort.Slice(list, func(i, j int) bool { return list[i].Range.Start.Byte < list[j].Range.Start.Byte })
}

func (l *loader) decodeOutput(b *hcl.Block) {
	if !l.checkLabel(b) {
		return
	}
	name := b.Labels[0]
	for _, o := range l.outputs {
		if o.name == name {
			l.duplicate("output", name, o.rng, b.DefRange)
			return
		}
	}
	content, diags := b.Body.Content(outputSchema)
	l.diags = append(l.diags, diags...)
	o := &output{name: name, rng: b.DefRange, dependsOn: content.Attributes["depends_on"]}
	if a := content.Attributes["value"]; a != nil {
		o.value = a.Expr
	} else {
		o.bad = true
	}
	if a := content.Attributes["description"]; a != nil {
		if v, ok := l.literal(a, cty.String); ok {
			o.description = v.AsString()
		}
	}
	if a := content.Attributes["sensitive"]; a != nil {
		if v, ok := l.literal(a, cty.Bool); ok {
			o.sensitive = v.True()
		}
	}
	l.outputs = append(l.outputs, o)
}

var metaArgs = []string{"count", "for_each", "depends_on"}

func (l *loader) decodeResource(b *hcl.Block) {
	if !l.checkLabel(b) {
		return
	}
	addr := resource.Addr{Kind: resource.Kind(b.Type), Name: b.Labels[0]}
	if prev := l.decls[addr]; prev != nil {
		l.duplicate(b.Type, addr.Name, prev.rng, b.DefRange)
		return
	}
	schema := resource.SchemaOf(addr.Kind)
	body, meta, diags := decodeBody(b.Body, schema, b.Type, b.DefRange, addr.String())
	l.diags = append(l.diags, diags...)
	d := &decl{
		addr: addr, schema: schema, body: body, rng: b.DefRange,
		count: meta["count"], forEach: meta["for_each"], dependsOn: meta["depends_on"],
	}
	l.decls[addr] = d
	l.declList = append(l.declList, d)
}

// decodeBody checks a body against a schema: unknown arguments and blocks,
// missing required arguments, computed attributes set by hand, repeated
// single blocks. self is the resource's address for top-level bodies (which
// also take the meta-arguments) and "" for nested blocks.
func decodeBody(hb hcl.Body, s *resource.Schema, what string, rng hcl.Range, self string) (*body, hcl.Attributes, hcl.Diagnostics) {
	bs := &hcl.BodySchema{}
	for _, name := range s.AttributeNames() {
		bs.Attributes = append(bs.Attributes, hcl.AttributeSchema{Name: name, Required: s.Attributes[name].Required})
	}
	if self != "" {
		for _, name := range metaArgs {
			bs.Attributes = append(bs.Attributes, hcl.AttributeSchema{Name: name})
		}
	}
	for _, name := range s.BlockNames() {
		bs.Blocks = append(bs.Blocks, hcl.BlockHeaderSchema{Type: name})
	}
	content, diags := hb.Content(bs)
	for _, d := range diags {
		switch d.Summary {
		case "Unsupported argument":
			var names []string
			for _, name := range s.AttributeNames() {
				if a := s.Attributes[name]; !a.Computed || a.Optional {
					names = append(names, name)
				}
			}
			if self != "" {
				names = append(names, metaArgs...)
			}
			d.Detail += fmt.Sprintf(" The arguments of %s %s are: %s.", article(what), what, namesOf(names))
			if _, rest, ok := strings.Cut(d.Detail, `"`); ok {
				name, _, _ := strings.Cut(rest, `"`)
				for _, bname := range s.BlockNames() {
					if _, ok := s.Blocks[bname].Schema.Attributes[name]; ok {
						d.Detail += fmt.Sprintf(" %s belongs in the %s block: %s { %s = ... }.", name, bname, bname, name)
						break
					}
				}
			}
		case "Missing required argument":
			if _, rest, ok := strings.Cut(d.Detail, `"`); ok {
				name, _, _ := strings.Cut(rest, `"`)
				if at := s.Attributes[name]; at != nil {
					d.Detail += fmt.Sprintf(" Add %s = ... to this %s", name, what)
					if at.Doc != "" {
						d.Detail += ": " + at.Doc
					}
					d.Detail += "."
				}
			}
		case "Unsupported block type":
			if len(s.Blocks) == 0 {
				d.Detail += fmt.Sprintf(" A %s has no nested blocks.", what)
			} else {
				d.Detail += fmt.Sprintf(" The blocks of a %s are: %s.", what, namesOf(s.BlockNames()))
			}
		}
	}
	b := &body{schema: s, what: what, attrs: hcl.Attributes{}, blocks: map[string][]*body{}, rng: rng}
	meta := hcl.Attributes{}
	for name, a := range content.Attributes {
		at := s.Attributes[name]
		switch {
		case at == nil:
			meta[name] = a
		case at.Computed && !at.Optional:
			doc := ""
			if at.Doc != "" {
				doc = " (" + at.Doc + ")"
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Cannot set %q", name),
				Detail: fmt.Sprintf("%s is set by berth and cannot be configured%s. Remove this argument; other blocks can read it as %s.%s.",
					name, doc, self, name),
				Subject: a.NameRange.Ptr(),
			})
		default:
			b.attrs[name] = a
		}
	}
	seen := map[string]*hcl.Block{}
	for _, blk := range content.Blocks {
		nested := s.Blocks[blk.Type]
		if nested.Nesting == resource.NestingSingle {
			if prev := seen[blk.Type]; prev != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("Duplicate %s block", blk.Type),
					Detail: fmt.Sprintf("A %s may have only one %s block; the first is at %s. Merge them into one.",
						what, blk.Type, where(prev.DefRange)),
					Subject: blk.DefRange.Ptr(),
				})
				continue
			}
			seen[blk.Type] = blk
		}
		nb, _, d := decodeBody(blk.Body, nested.Schema, blk.Type+" block", blk.DefRange, "")
		diags = append(diags, d...)
		b.blocks[blk.Type] = append(b.blocks[blk.Type], nb)
	}
	return b, meta, diags
}

// exprs lists every expression of the body and its nested blocks, in
// source order, so diagnostics come out in reading order.
func (b *body) exprs() []hcl.Expression {
	var attrs []*hcl.Attribute
	for _, a := range b.attrs {
		attrs = append(attrs, a)
	}
	sortAttrs(attrs)
	var out []hcl.Expression
	for _, a := range attrs {
		out = append(out, a.Expr)
	}
	for _, name := range b.schema.BlockNames() {
		for _, nb := range b.blocks[name] {
			out = append(out, nb.exprs()...)
		}
	}
	return out
}

// namesOf lists names for "declared X are: a, b" messages.
func namesOf(names []string) string {
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// article is "an" before a vowel sound, "a" otherwise: "an image".
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}
