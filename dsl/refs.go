package dsl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/seed-e88ffcd2/berth/resource"
)

// refSet is what a group of expressions refers to, each with the range of
// its first mention.
type refSet struct {
	resources map[resource.Addr]hcl.Range
	locals    map[string]hcl.Range
}

func newRefSet() *refSet {
	return &refSet{resources: map[resource.Addr]hcl.Range{}, locals: map[string]hcl.Range{}}
}

// scope says which iteration objects an expression may use.
type scope struct {
	count, forEach bool
}

// collect checks every reference of the expressions and records the
// resources and locals among them. It reports whether all were valid.
func (l *loader) collect(rs *refSet, sc scope, exprs ...hcl.Expression) bool {
	ok := true
	for _, e := range exprs {
		if e == nil {
			continue
		}
		for _, t := range e.Variables() {
			if !l.checkTraversal(t, sc, rs) {
				ok = false
			}
		}
	}
	return ok
}

func attrStep(t hcl.Traversal, i int) (string, hcl.Range, bool) {
	if len(t) <= i {
		return "", hcl.Range{}, false
	}
	if a, ok := t[i].(hcl.TraverseAttr); ok {
		return a.Name, a.SrcRange, true
	}
	return "", hcl.Range{}, false
}

func isIndex(s hcl.Traverser) bool {
	_, ok := s.(hcl.TraverseIndex)
	return ok
}

// checkTraversal validates one reference: the thing it names must be
// declared, and an attribute of a resource must exist in its kind.
func (l *loader) checkTraversal(t hcl.Traversal, sc scope, rs *refSet) bool {
	rng := t.SourceRange()
	root := t.RootName()
	switch root {
	case "var", "local":
		name, _, ok := attrStep(t, 1)
		kind, example := "variable", "var.replicas"
		if root == "local" {
			kind, example = "local value", "local.labels"
		}
		if !ok {
			l.errorf(&rng, "Invalid reference", "A %s is referred to by name, such as %s.", kind, example)
			return false
		}
		var declared []string
		if root == "var" {
			if l.vars[name] != nil {
				return true
			}
			for n := range l.vars {
				declared = append(declared, n)
			}
		} else {
			if l.locals[name] != nil {
				if _, seen := rs.locals[name]; !seen {
					rs.locals[name] = rng
				}
				return true
			}
			for n := range l.locals {
				declared = append(declared, n)
			}
		}
		l.undeclaredRef(rng, kind, root+".", name, declared)
		return false
	case "path":
		if name, _, ok := attrStep(t, 1); !ok || (name != "module" && name != "root") {
			l.errorf(&rng, "Invalid reference", "The path object has only the attributes module and root, both the configuration directory.")
			return false
		}
		return true
	case "count", "each":
		allowed, attrs, what := sc.count, []string{"index"}, "count.index is available only in a resource that sets count"
		if root == "each" {
			allowed, attrs, what = sc.forEach, []string{"key", "value"}, "each.key and each.value are available only in a resource that sets for_each"
		}
		if !allowed {
			l.errorf(&rng, fmt.Sprintf("Reference to %q in wrong context", root), "%s; use it inside such a resource's arguments.", what)
			return false
		}
		name, _, ok := attrStep(t, 1)
		if !ok || (name != attrs[0] && (len(attrs) == 1 || name != attrs[1])) {
			l.errorf(&rng, "Invalid reference", "The %s object has only the attributes %s, such as %s.%s.", root, strings.Join(attrs, " and "), root, attrs[0])
			return false
		}
		return true
	}
	kind := resource.Kind(root)
	schema := resource.SchemaOf(kind)
	if schema == nil {
		roots := []string{"var", "local", "count", "each", "path"}
		for _, k := range resource.Kinds {
			roots = append(roots, string(k))
		}
		detail := fmt.Sprintf("There is nothing named %q. A reference starts with var., local., count., each., path. or a resource kind (image, network, volume, container).", root)
		if s := suggest(root, roots); s != "" {
			detail += fmt.Sprintf(" Did you mean %s?", s)
		}
		l.errorf(&rng, "Reference to undeclared name", "%s", detail)
		return false
	}
	name, _, ok := attrStep(t, 1)
	if !ok {
		l.errorf(&rng, "Invalid reference", "A resource is referred to as KIND.NAME, such as %s.web.", kind)
		return false
	}
	addr := resource.Addr{Kind: kind, Name: name}
	d := l.decls[addr]
	if d == nil {
		var declared []string
		for a := range l.decls {
			if a.Kind == kind {
				declared = append(declared, a.Name)
			}
		}
		l.undeclaredRef(rng, string(kind), string(kind)+".", name, declared)
		return false
	}
	if _, seen := rs.resources[addr]; !seen {
		rs.resources[addr] = rng
	}
	i := 2
	expanded := d.count != nil || d.forEach != nil
	if len(t) > 2 {
		switch {
		case expanded && isIndex(t[2]):
			i = 3
		case expanded:
			meta := "count"
			example := "[0]"
			if d.forEach != nil {
				meta, example = "for_each", `["KEY"]`
			}
			l.errorf(&rng, "Missing resource instance key",
				"%s has %s, so it is a collection of instances. Refer to one instance, such as %s%s.%s, or to all of them with %s[*].%s.",
				addr, meta, addr, example, attrName(t, 2), addr, attrName(t, 2))
			return false
		case isIndex(t[2]):
			l.errorf(&rng, "Unexpected resource instance key",
				"%s sets neither count nor for_each, so it has no instances to index. Remove the index: %s.ATTRIBUTE.", addr, addr)
			return false
		}
	}
	attr, arng, ok := attrStep(t, i)
	if !ok {
		return true
	}
	if schema.Attributes[attr] == nil && schema.Blocks[attr] == nil {
		names := append(schema.AttributeNames(), schema.BlockNames()...)
		detail := fmt.Sprintf("%s objects have no attribute %q.", kind, attr)
		if s := suggest(attr, names); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		detail += " The attributes are: " + namesOf(names) + "."
		l.errorf(&arng, "Unsupported attribute", "%s", detail)
		return false
	}
	return true
}

func attrName(t hcl.Traversal, i int) string {
	if n, _, ok := attrStep(t, i); ok {
		return n
	}
	return "ATTRIBUTE"
}

// undeclaredRef reports a reference to something no block declares.
func (l *loader) undeclaredRef(rng hcl.Range, kind, prefix, name string, declared []string) {
	detail := fmt.Sprintf("There is no %s named %q", kind, name)
	if len(declared) == 0 {
		detail += "; none is declared."
	} else {
		detail += fmt.Sprintf("; declared %ss are: %s.", kind, namesOf(declared))
		if s := suggest(name, declared); s != "" {
			detail += fmt.Sprintf(" Did you mean %s%s?", prefix, s)
		}
	}
	detail += " Declare it, or correct the reference."
	l.errorf(&rng, "Reference to undeclared "+kind, "%s", detail)
}

// suggest returns the name closest to given, if it is close enough to be
// a likely typo.
func suggest(given string, names []string) string {
	best, bestDist := "", 3
	sort.Strings(names)
	for _, n := range names {
		// Short names are all close to each other; demand more
		// similarity of them.
		if d := distance(given, n); d < bestDist && 2*d < len(given) {
			best, bestDist = n, d
		}
	}
	return best
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// analyzeLocals checks the references of every local, orders the locals
// so each comes after those it uses, diagnoses cycles, and evaluates the
// locals that use no resource.
func (l *loader) analyzeLocals() {
	for _, lo := range l.localList {
		lo.refs = newRefSet()
		lo.bad = !l.collect(lo.refs, scope{}, lo.attr.Expr)
	}
	names := make([]string, len(l.localList))
	for i, lo := range l.localList {
		names[i] = lo.name
	}
	order, cycles := topoSort(names, func(n string) []string { return sortedKeys(l.locals[n].refs.locals) })
	l.localOrder = order
	for _, c := range cycles {
		for _, n := range c {
			l.locals[n].cyclic = true
		}
		first := l.locals[c[0]]
		rng := first.refs.locals[c[1]]
		l.errorf(&rng, "Cycle in local values",
			"%s: each needs the other's value first. Break the cycle by computing one of them without the other.",
			path(c, "local."))
	}
	// A local is static when neither it nor a local it uses refers to a
	// resource.
	for _, n := range l.localOrder {
		lo := l.locals[n]
		lo.static = len(lo.refs.resources) == 0 && !lo.cyclic
		for dep := range lo.refs.locals {
			if !l.locals[dep].static {
				lo.static = false
			}
		}
	}
	ctx := l.staticContext()
	for _, n := range l.localOrder {
		lo := l.locals[n]
		if !lo.static {
			continue
		}
		v, diags := evalLocal(lo, ctx)
		lo.val = v
		l.diags = append(l.diags, diags...)
		ctx.Variables["local"] = l.staticLocals()
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func path(cycle []string, prefix string) string {
	parts := make([]string, len(cycle))
	for i, n := range cycle {
		parts[i] = prefix + n
	}
	return strings.Join(parts, " → ")
}

// topoSort orders nodes so each comes after its edges' targets, and
// returns each cycle it finds as a path that ends where it starts.
func topoSort(nodes []string, edges func(string) []string) (order []string, cycles [][]string) {
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(string)
	visit = func(n string) {
		state[n] = active
		stack = append(stack, n)
		for _, m := range edges(n) {
			switch state[m] {
			case active:
				i := len(stack) - 1
				for stack[i] != m {
					i--
				}
				cycle := append(append([]string{}, stack[i:]...), m)
				cycles = append(cycles, cycle)
			case unvisited:
				visit(m)
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		order = append(order, n)
	}
	for _, n := range nodes {
		if state[n] == unvisited {
			visit(n)
		}
	}
	return order, cycles
}

// localResources is every resource a local uses, directly or through
// other locals.
func (l *loader) localResources(name string, into map[resource.Addr]hcl.Range, rng hcl.Range, seen map[string]bool) {
	if seen[name] {
		return
	}
	seen[name] = true
	lo := l.locals[name]
	for a := range lo.refs.resources {
		if _, ok := into[a]; !ok {
			into[a] = rng
		}
	}
	for dep := range lo.refs.locals {
		l.localResources(dep, into, rng, seen)
	}
}

// resolve turns a refSet into resource dependencies, following locals:
// a local that uses a resource makes its user depend on that resource. The
// range of each is where the user mentions it (or the local leading to it).
func (l *loader) resolve(rs *refSet) map[resource.Addr]hcl.Range {
	deps := map[resource.Addr]hcl.Range{}
	for a, rng := range rs.resources {
		deps[a] = rng
	}
	seen := map[string]bool{}
	for _, name := range sortedKeys(rs.locals) {
		l.localResources(name, deps, rs.locals[name], seen)
	}
	return deps
}

// neededLocals lists, in evaluation order, the locals an expression set
// uses directly or indirectly.
func (l *loader) neededLocals(rs *refSet) []string {
	need := map[string]bool{}
	var mark func(string)
	mark = func(n string) {
		if need[n] {
			return
		}
		need[n] = true
		for dep := range l.locals[n].refs.locals {
			mark(dep)
		}
	}
	for n := range rs.locals {
		mark(n)
	}
	var out []string
	for _, n := range l.localOrder {
		if need[n] {
			out = append(out, n)
		}
	}
	return out
}

// dependsOn reads a depends_on list: references to whole resources.
func (l *loader) dependsOn(a *hcl.Attribute, deps map[resource.Addr]hcl.Range) bool {
	if a == nil {
		return true
	}
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		l.errorf(a.Expr.Range().Ptr(), "Invalid depends_on",
			"depends_on must be a list of resource references, such as [network.backend, container.db].")
		return false
	}
	ok := true
	for _, e := range exprs {
		t, diags := hcl.AbsTraversalForExpr(e)
		if diags.HasErrors() || len(t) != 2 || resource.SchemaOf(resource.Kind(t.RootName())) == nil {
			l.errorf(e.Range().Ptr(), "Invalid depends_on entry",
				"%s is not a resource. Each entry of depends_on names a whole resource, such as network.backend, without quotes, attributes or index.", l.source(e.Range()))
			ok = false
			continue
		}
		rs := newRefSet()
		if !l.checkTraversal(t, scope{}, rs) {
			ok = false
			continue
		}
		for addr := range rs.resources {
			if _, seen := deps[addr]; !seen {
				deps[addr] = e.Range()
			}
		}
	}
	return ok
}

// analyzeOutputs checks the references of every output.
func (l *loader) analyzeOutputs() {
	for _, o := range l.outputs {
		o.refs = newRefSet()
		if !l.collect(o.refs, scope{}, o.value) {
			o.bad = true
		}
		if !l.dependsOn(o.dependsOn, o.refs.resources) {
			o.bad = true
		}
	}
}

// analyzeResources checks each resource's references, resolves its
// dependencies and diagnoses cycles between resources.
func (l *loader) analyzeResources() {
	for _, d := range l.declList {
		d.refs = newRefSet()
		sc := scope{count: d.count != nil, forEach: d.forEach != nil}
		ok := l.collect(d.refs, sc, d.body.exprs()...)
		if d.count != nil {
			ok = l.collect(d.refs, scope{}, d.count.Expr) && ok
		}
		if d.forEach != nil {
			ok = l.collect(d.refs, scope{}, d.forEach.Expr) && ok
		}
		d.deps = l.resolve(d.refs)
		ok = l.dependsOn(d.dependsOn, d.deps) && ok
		d.bad = !ok
	}
	names := make([]string, len(l.declList))
	byName := map[string]*decl{}
	for i, d := range l.declList {
		names[i] = d.addr.String()
		byName[names[i]] = d
	}
	_, cycles := topoSort(names, func(n string) []string {
		var out []string
		for a := range byName[n].deps {
			out = append(out, a.String())
		}
		sort.Strings(out)
		return out
	})
	for _, c := range cycles {
		first := byName[c[0]]
		rng := first.deps[byName[c[1]].addr]
		if len(c) == 2 {
			l.errorf(&rng, "Self-referential resource",
				"%s refers to itself, but a resource cannot use its own values: they exist only once it does. Remove the reference.", c[0])
			continue
		}
		l.errorf(&rng, "Cycle between resources",
			"%s: each needs the other to exist first. Remove one of the references or depends_on entries on this path.",
			strings.Join(c, " → "))
	}
}
