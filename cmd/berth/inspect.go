package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/seed-e88ffcd2/berth/dsl"
	"github.com/seed-e88ffcd2/berth/plan"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/seed-e88ffcd2/berth/state"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

func ctyJSON(v cty.Value) ([]byte, error) { return ctyjson.Marshal(v, v.Type()) }

func (c *CLI) validate(_ context.Context, args []string) int {
	fs := c.newFlags("validate", "[flags]")
	var cf configFlags
	cf.register(fs)
	jsonOut := fs.Bool("json", false, "print the diagnostics as JSON")
	in, pos, code, ok := c.parseConfig(fs, &cf, args)
	if !ok {
		return code
	}
	if code, ok := c.noArgs("validate", pos); !ok {
		return code
	}
	if *jsonOut {
		cfg, diags := c.loadQuiet(in)
		diags = append(diags, checkOffline(cfg, diags)...)
		if err := dsl.WriteDiagnosticsJSON(c.Stdout, cfg.Files, diags); err != nil {
			return c.errorf("%v", err)
		}
		if diags.HasErrors() {
			return 1
		}
		return 0
	}
	cfg, diags := c.loadQuiet(in)
	diags = append(diags, checkOffline(cfg, diags)...)
	c.diagnostics(cfg, diags)
	if diags.HasErrors() {
		return 1
	}
	fmt.Fprintln(c.Stdout, "The configuration is valid.")
	return 0
}

func (c *CLI) fmt(_ context.Context, args []string) int {
	fs := c.newFlags("fmt", "[-check] [DIR]")
	check := fs.Bool("check", false, "change nothing; exit 3 if a file is not formatted")
	dir := fs.String("dir", ".", "configuration directory (or give it as the argument)")
	pos, ok, code := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		return c.errorf("fmt takes at most one directory, but was given %s", strings.Join(pos, " "))
	}
	if len(pos) == 1 {
		*dir = pos[0]
	}
	changed, diags := dsl.FormatDir(*dir, !*check)
	if diags.HasErrors() {
		cfg, _ := c.loadQuiet(inputs{Dir: *dir})
		c.diagnostics(cfg, diags)
		return 1
	}
	for _, f := range changed {
		fmt.Fprintln(c.Stdout, f)
	}
	if *check && len(changed) > 0 {
		return 3
	}
	return 0
}

// checkOffline plans a loaded configuration against an empty state with no
// host: what that finds (two containers with one name or one published
// port) needs no host to be wrong.
func checkOffline(cfg *resource.Config, loaded hcl.Diagnostics) hcl.Diagnostics {
	if loaded.HasErrors() {
		return nil
	}
	empty := &state.Snapshot{Project: cfg.Project, Objects: map[resource.Addr]*resource.Object{}}
	_, diags := plan.Compute(context.Background(), cfg, empty, nil, plan.Options{})
	return diags
}

// projectFlags are the flags of the commands that read a project's state
// without loading its configuration.
type projectFlags struct {
	dir, project string
	noColor      bool
}

func (f *projectFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "dir", ".", "configuration directory (names the project)")
	fs.StringVar(&f.project, "project", "", "project (default: the directory's name)")
	fs.BoolVar(&f.noColor, "no-color", false, "no colours in the output")
}

// snapshot opens the host and reads the project's state.
func (c *CLI) snapshot(f *projectFlags, operation string, lock bool) (*session, *state.Snapshot, bool) {
	c.Color = c.Color && !f.noColor
	c.ErrColor = c.ErrColor && !f.noColor
	project := f.project
	if project == "" {
		abs, err := c.abs(f.dir)
		if err != nil {
			c.errorf("%v", err)
			return nil, nil, false
		}
		project = dsl.ProjectName(abs)
	}
	s, err := c.open(project, operation, lock)
	if err != nil {
		c.errorf("%v", err)
		return nil, nil, false
	}
	snap, err := s.host.Store.Snapshot(project)
	if err != nil {
		s.close()
		c.errorf("%v", err)
		return nil, nil, false
	}
	return s, plan.Conformed(snap), true
}

// output prints the output values the last apply recorded.
func (c *CLI) output(_ context.Context, args []string) int {
	fs := c.newFlags("output", "[flags] [NAME]")
	var pf projectFlags
	pf.register(fs)
	jsonOut := fs.Bool("json", false, "print as JSON")
	raw := fs.Bool("raw", false, "print a string output without quotes, for scripts")
	pos, ok, code := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		return c.errorf("output takes at most one output name, but was given %s", strings.Join(pos, " "))
	}
	s, snap, ok := c.snapshot(&pf, "output", false)
	if !ok {
		return 1
	}
	defer s.close()
	outputs := snap.Outputs
	if len(outputs) == 0 && len(snap.Objects) == 0 {
		return c.errorf("project %q has no recorded outputs: run berth apply first", snap.Project)
	}
	if len(pos) == 1 {
		name := pos[0]
		v, ok := outputs[name]
		if !ok {
			return c.errorf("no output named %q was recorded by the last apply (recorded: %s)", name, strings.Join(sortedKeys(outputs), ", "))
		}
		switch {
		case *raw && v.Type() == cty.String && !v.IsNull():
			fmt.Fprintln(c.Stdout, v.AsString())
		case *jsonOut:
			b, _ := ctyJSON(v)
			fmt.Fprintln(c.Stdout, string(b))
		default:
			fmt.Fprintln(c.Stdout, hclValue(v))
		}
		return 0
	}
	if *jsonOut {
		out := map[string]any{}
		for n, v := range outputs {
			out[n] = jsonValue(v)
		}
		return c.printJSON(out)
	}
	for _, n := range sortedKeys(outputs) {
		fmt.Fprintf(c.Stdout, "%s = %s\n", n, hclValue(outputs[n]))
	}
	return 0
}

// state lists, shows and forgets records of the project.
func (c *CLI) state(_ context.Context, args []string) int {
	fs := c.newFlags("state", "list | show ADDR | rm ADDR  [flags]")
	var pf projectFlags
	pf.register(fs)
	jsonOut := fs.Bool("json", false, "print as JSON (list, show)")
	pos, ok, code := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fs.Usage()
		return 1
	}
	sub, rest := pos[0], pos[1:]
	switch sub {
	case "list":
		if len(rest) > 0 {
			return c.errorf("state list takes no arguments, but was given %s", strings.Join(rest, " "))
		}
	case "show", "rm":
		if len(rest) != 1 {
			return c.errorf("state %s takes one address, such as container.web", sub)
		}
	default:
		return c.errorf("unknown state command %q: use list, show or rm", sub)
	}
	s, snap, ok := c.snapshot(&pf, "state "+sub, sub == "rm")
	if !ok {
		return 1
	}
	defer s.close()
	if sub == "list" {
		if *jsonOut {
			list := []map[string]any{}
			for _, obj := range snap.Sorted() {
				list = append(list, objectJSON(obj))
			}
			return c.printJSON(map[string]any{"project": snap.Project, "serial": snap.Serial, "lineage": snap.Lineage, "objects": list})
		}
		for _, obj := range snap.Sorted() {
			fmt.Fprintln(c.Stdout, obj.Addr)
		}
		return 0
	}
	a, err := resource.ParseAddr(rest[0])
	if err != nil {
		return c.errorf("%v", err)
	}
	if snap.Objects[a] == nil {
		return c.errorf("%s is not in the state of project %q (berth state list shows what is)", a, snap.Project)
	}
	if sub == "show" {
		if *jsonOut {
			return c.printJSON(objectJSON(snap.Objects[a]))
		}
		writeObject(c.Stdout, snap.Objects[a])
		return 0
	}
	if err := s.host.Store.Delete(snap.Project, a); err != nil {
		return c.errorf("%v", err)
	}
	fmt.Fprintf(c.Stdout, "Removed %s from the state. The object on the host was left as it is; berth no longer tracks it (an apply of this project may take it back).\n", a)
	return 0
}

// objectJSON is a recorded object for -json output.
func objectJSON(obj *resource.Object) map[string]any {
	deps := []string{}
	for _, d := range obj.Deps {
		deps = append(deps, d.String())
	}
	return map[string]any{"address": obj.Addr.String(), "kind": obj.Addr.Kind, "value": jsonValue(obj.Value), "depends_on": deps}
}

func (c *CLI) printJSON(v any) int {
	b, err := jsonMarshalIndent(v)
	if err != nil {
		return c.errorf("%v", err)
	}
	fmt.Fprintln(c.Stdout, string(b))
	return 0
}

// writeObject prints a recorded object as an HCL block.
func writeObject(w io.Writer, obj *resource.Object) {
	f := hclwrite.NewEmptyFile()
	body := f.Body().AppendNewBlock(string(obj.Addr.Kind), []string{obj.Addr.Name}).Body()
	writeBody(body, resource.SchemaOf(obj.Addr.Kind), obj.Value)
	if len(obj.Deps) > 0 {
		deps := make([]cty.Value, len(obj.Deps))
		for i, d := range obj.Deps {
			deps[i] = cty.StringVal(d.String())
		}
		body.AppendNewline()
		body.SetAttributeValue("depended_on", cty.ListVal(deps))
	}
	fmt.Fprintf(w, "# %s\n", obj.Addr)
	_, _ = w.Write(hclwrite.Format(f.Bytes()))
}

func writeBody(body *hclwrite.Body, schema *resource.Schema, v cty.Value) {
	for _, n := range schema.AttributeNames() {
		if av := v.GetAttr(n); !av.IsNull() && av.IsWhollyKnown() {
			body.SetAttributeValue(n, av)
		}
	}
	for _, n := range schema.BlockNames() {
		bv := v.GetAttr(n)
		if bv.IsNull() || !bv.IsWhollyKnown() {
			continue
		}
		elems := []cty.Value{bv}
		if bv.Type().IsListType() {
			elems = bv.AsValueSlice()
		}
		for _, e := range elems {
			writeBody(body.AppendNewBlock(n, nil).Body(), schema.Blocks[n].Schema, e)
		}
	}
}
