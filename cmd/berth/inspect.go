package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/seed-e88ffcd2/berth/dsl"
	"github.com/seed-e88ffcd2/berth/plan"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

func ctyJSON(v cty.Value) ([]byte, error) { return ctyjson.Marshal(v, v.Type()) }

func (c *CLI) validate(_ context.Context, args []string) int {
	fs := c.newFlags("validate", "[flags]")
	var cf configFlags
	cf.register(fs)
	jsonOut := fs.Bool("json", false, "print the diagnostics as JSON")
	in, code, ok := c.parseConfig(fs, &cf, args)
	if !ok {
		return code
	}
	if *jsonOut {
		cfg, diags := c.loadQuiet(in)
		if err := dsl.WriteDiagnosticsJSON(c.Stdout, cfg.Files, diags); err != nil {
			return c.errorf("%v", err)
		}
		if diags.HasErrors() {
			return 1
		}
		return 0
	}
	if _, ok := c.load(in); !ok {
		return 1
	}
	fmt.Fprintln(c.Stdout, "The configuration is valid.")
	return 0
}

func (c *CLI) fmt(_ context.Context, args []string) int {
	fs := c.newFlags("fmt", "[-check] [DIR]")
	check := fs.Bool("check", false, "change nothing; exit 3 if a file is not formatted")
	if ok, code := parse(fs, args); !ok {
		return code
	}
	dir := "."
	if fs.NArg() > 0 {
		dir = fs.Arg(0)
	}
	changed, diags := dsl.FormatDir(dir, !*check)
	if diags.HasErrors() {
		c.diagnostics(nil, diags)
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

// output evaluates the outputs with the recorded state.
func (c *CLI) output(_ context.Context, args []string) int {
	fs := c.newFlags("output", "[flags] [NAME]")
	var cf configFlags
	cf.register(fs)
	jsonOut := fs.Bool("json", false, "print as JSON")
	raw := fs.Bool("raw", false, "print a string output without quotes, for scripts")
	in, code, ok := c.parseConfig(fs, &cf, args)
	if !ok {
		return code
	}
	cfg, ok := c.load(in)
	if !ok {
		return 1
	}
	s, err := c.open(cfg.Project, "output", false)
	if err != nil {
		return c.errorf("%v", err)
	}
	defer s.close()
	snap, err := s.host.Store.Snapshot(cfg.Project)
	if err != nil {
		return c.errorf("%v", err)
	}
	outputs, diags := plan.EvalOutputs(cfg, snapshotValues(snap))
	c.diagnostics(cfg, diags)
	if name := fs.Arg(0); name != "" {
		v, ok := outputs[name]
		if !ok {
			return c.errorf("no output named %q", name)
		}
		switch {
		case *raw && v.IsKnown() && v.Type() == cty.String && !v.IsNull():
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
	dir := fs.String("dir", ".", "configuration directory (names the project)")
	project := fs.String("project", "", "project (default: the directory's name)")
	jsonOut := fs.Bool("json", false, "print as JSON (list, show)")
	// Flags may come before or after the subcommand.
	var sub string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	if ok, code := parse(fs, args); !ok {
		return code
	}
	rest := fs.Args()
	if sub == "" && len(rest) > 0 {
		sub = rest[0]
		if ok, code := parse(fs, rest[1:]); !ok {
			return code
		}
		rest = fs.Args()
	}
	if sub == "" {
		fs.Usage()
		return 1
	}
	if *project == "" {
		abs, err := filepath.Abs(*dir)
		if err != nil {
			return c.errorf("%v", err)
		}
		*project = dsl.ProjectName(abs)
	}
	s, err := c.open(*project, "state "+sub, sub == "rm")
	if err != nil {
		return c.errorf("%v", err)
	}
	defer s.close()
	snap, err := s.host.Store.Snapshot(*project)
	if err != nil {
		return c.errorf("%v", err)
	}
	addrArg := func() (resource.Addr, bool) {
		if len(rest) != 1 {
			c.errorf("state %s takes one address, such as container.web", sub)
			return resource.Addr{}, false
		}
		a, err := resource.ParseAddr(rest[0])
		if err != nil {
			c.errorf("%v", err)
			return a, false
		}
		if snap.Objects[a] == nil {
			c.errorf("%s is not in the state of project %q (berth state list shows what is)", a, *project)
			return a, false
		}
		return a, true
	}
	switch sub {
	case "list":
		if *jsonOut {
			list := []map[string]any{}
			for _, obj := range snap.Sorted() {
				list = append(list, objectJSON(obj))
			}
			return c.printJSON(map[string]any{"project": *project, "serial": snap.Serial, "lineage": snap.Lineage, "objects": list})
		}
		for _, obj := range snap.Sorted() {
			fmt.Fprintln(c.Stdout, obj.Addr)
		}
	case "show":
		a, ok := addrArg()
		if !ok {
			return 1
		}
		if *jsonOut {
			return c.printJSON(objectJSON(snap.Objects[a]))
		}
		writeObject(c.Stdout, snap.Objects[a])
	case "rm":
		a, ok := addrArg()
		if !ok {
			return 1
		}
		if err := s.host.Store.Delete(*project, a); err != nil {
			return c.errorf("%v", err)
		}
		fmt.Fprintf(c.Stdout, "Removed %s from the state. The object on the host was left as it is; berth no longer manages it.\n", a)
	default:
		return c.errorf("unknown state command %q: use list, show or rm", sub)
	}
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

// logs prints a container's output files.
func (c *CLI) logs(_ context.Context, args []string) int {
	fs := c.newFlags("logs", "[flags] container.NAME")
	dir := fs.String("dir", ".", "configuration directory (names the project)")
	project := fs.String("project", "", "project (default: the directory's name)")
	if ok, code := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return c.errorf("logs takes one container address, such as container.web")
	}
	a, err := resource.ParseAddr(fs.Arg(0))
	if err != nil || a.Kind != resource.KindContainer {
		return c.errorf("logs takes a container address, such as container.web")
	}
	if *project == "" {
		abs, _ := filepath.Abs(*dir)
		*project = dsl.ProjectName(abs)
	}
	s, err := c.open(*project, "logs", false)
	if err != nil {
		return c.errorf("%v", err)
	}
	defer s.close()
	snap, err := s.host.Store.Snapshot(*project)
	if err != nil {
		return c.errorf("%v", err)
	}
	obj := snap.Objects[a]
	if obj == nil {
		return c.errorf("%s is not in the state of project %q", a, *project)
	}
	var spec resource.ContainerSpec
	if err := resource.Decode(obj.Value, &spec); err != nil {
		return c.errorf("%v", err)
	}
	stdout, stderr := s.host.Containers.Logs(spec.ID)
	for _, p := range []struct {
		path string
		w    io.Writer
	}{{stdout, c.Stdout}, {stderr, c.Stderr}} {
		f, err := os.Open(p.path)
		if err != nil {
			return c.errorf("%v", err)
		}
		_, _ = io.Copy(p.w, f)
		f.Close()
	}
	return 0
}
