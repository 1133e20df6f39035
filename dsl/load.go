// Package dsl reads a berth configuration — the *.hcl files of one
// directory — into a resource.Config: it decodes the blocks against the
// schemas of package resource, resolves variables and locals, expands count
// and for_each, turns references into dependency edges, and reports every
// mistake it finds as an HCL diagnostic with a source range, all in one
// pass. It also formats files for `berth fmt`.
//
// Expressions that refer to resources are not evaluated here: each
// Instance carries an Eval function the planner calls once the values it
// depends on are known, or known to be unknown. dsl imports resource, hcl
// and cty only; cmd/berth and the planner import it.
package dsl

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Options are the inputs of a load besides the files.
type Options struct {
	// Project names the objects this configuration owns on a host; ""
	// means the sanitized base name of the directory.
	Project string
	// Vars are -var name=value flags, as raw strings. A value for a
	// variable of a collection or object type is parsed as an HCL
	// expression, as Terraform does, so -var 'ports=[80,443]' works;
	// others are strings, converted to the variable's type.
	Vars map[string]string
	// VarFiles are -var-file paths (name = value lines), applied in order.
	VarFiles []string
	// Environ is the process environment; BERTH_VAR_name=value sets
	// variable name, below the var files and -var flags.
	Environ []string
}

// envPrefix marks environment variables that set configuration variables.
const envPrefix = "BERTH_VAR_"

// Load reads every *.hcl file of dir (sorted, not recursive) into a Config.
// The Config is never nil and always carries the parsed files, so the
// caller can render the diagnostics with their source snippets.
func Load(dir string, opts Options) (*resource.Config, hcl.Diagnostics) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		cfg := &resource.Config{Dir: dir, Files: map[string]*hcl.File{}}
		return cfg, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read the configuration directory",
			Detail:   fmt.Sprintf("%s. Run berth in a directory holding *.hcl files, or name one.", err),
		}}
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".hcl") && e.Name() != LockFile {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		// An empty configuration would plan the destruction of everything
		// the project owns: a wrong -dir must not look like that.
		cfg := &resource.Config{Dir: dir, Files: map[string]*hcl.File{}}
		return cfg, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No configuration files",
			Detail:   fmt.Sprintf("%s holds no *.hcl files. Run berth in a configuration directory or name one with -dir; to delete what a project made, use berth destroy.", dir),
		}}
	}
	return load(dir, names, opts)
}

// loader holds what one Load has decoded so far. Loading runs in phases
// (structure, variables, references, expansion, evaluation); each phase
// keeps going past errors so one run reports everything.
type loader struct {
	dir     string // absolute
	opts    Options
	project string
	parser  *hclparse.Parser
	funcs   map[string]function.Function
	diags   hcl.Diagnostics

	vars    map[string]*variable
	varList []*variable
	varVals map[string]cty.Value

	locals     map[string]*local
	localList  []*local
	localOrder []string // topological: a local after the locals it uses

	decls    map[resource.Addr]*decl
	declList []*decl

	outputs []*output

	// lock is Config.Lock: the lock file's pins, and those added later.
	lock map[string]string
}

func (l *loader) addDiag(d *hcl.Diagnostic) { l.diags = append(l.diags, d) }

func (l *loader) errorf(rng *hcl.Range, summary, format string, args ...any) {
	l.addDiag(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng})
}

func load(dir string, names []string, opts Options) (*resource.Config, hcl.Diagnostics) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	l := &loader{
		dir:     abs,
		opts:    opts,
		parser:  hclparse.NewParser(),
		funcs:   functions(abs),
		vars:    map[string]*variable{},
		varVals: map[string]cty.Value{},
		locals:  map[string]*local{},
		decls:   map[resource.Addr]*decl{},
	}
	l.project = l.projectName()
	cfg := &resource.Config{Dir: abs, Project: l.project}

	var paths []string
	for _, name := range names {
		path := filepath.Join(dir, name)
		paths = append(paths, path)
		f, diags := l.parser.ParseHCLFile(path)
		l.diags = append(l.diags, diags...)
		if f != nil && f.Body != nil {
			l.decodeFile(f)
		}
	}
	lock, diags := readLock(l.parser, dir)
	l.diags = append(l.diags, diags...)
	cfg.Lock = lock
	l.lock = lock
	l.assignVariables()
	l.analyzeLocals()
	l.analyzeOutputs()
	l.analyzeResources()
	l.expand(cfg)
	l.checkAll(cfg)

	cfg.Files = l.parser.Files()
	cfg.Hash = l.hash(paths)
	return cfg, sortDiags(dedupe(dropCascades(cfg.Files, l.diags)))
}

// projectName is Options.Project, or the directory's base name made safe
// for host object names.
func (l *loader) projectName() string {
	if p := l.opts.Project; p != "" {
		if sanitize(p) != p || !isAlnum(p[0]) {
			l.errorf(nil, "Invalid project name",
				"The project name %q may hold only letters, digits, '.', '_' and '-', and must start with a letter or digit, because it prefixes the names of containers, networks and volumes. Choose another with -project.", p)
		}
		return p
	}
	return ProjectName(l.dir)
}

// ProjectName is the project a configuration directory names when no
// -project is given: its base name made safe for host object names. Commands
// that read the state without loading the configuration use it too.
func ProjectName(dir string) string {
	p := strings.TrimLeft(sanitize(filepath.Base(dir)), "._-")
	if p == "" {
		return "berth"
	}
	return p
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// sanitize replaces every byte not allowed in a host object name by '-'.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			b[i] = '-'
		}
	}
	return string(b)
}

// hash identifies the configuration files and the variable values they
// were loaded with; names are base names so moving the directory keeps it.
func (l *loader) hash(paths []string) string {
	h := sha256.New()
	files := l.parser.Files()
	for _, p := range paths {
		f := files[p]
		if f == nil {
			continue
		}
		fmt.Fprintf(h, "file %q %d\n", filepath.Base(p), len(f.Bytes))
		h.Write(f.Bytes)
	}
	names := make([]string, 0, len(l.varVals))
	for n := range l.varVals {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := l.varVals[n]
		js, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			js = []byte(v.GoString())
		}
		fmt.Fprintf(h, "var %q %s\n", n, js)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sortDiags orders diagnostics as a reader meets them: those without a
// source (flags, environment) first, then by file and position.
func sortDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return diags
}

// source returns the text of a range, for messages that quote it.
func (l *loader) source(rng hcl.Range) string {
	f := l.parser.Files()[rng.Filename]
	if f == nil || rng.End.Byte > len(f.Bytes) || rng.Start.Byte > rng.End.Byte {
		return ""
	}
	return string(f.Bytes[rng.Start.Byte:rng.End.Byte])
}

// where names a place in a message: every file is in the one directory,
// so its base name and line are enough, and stay so when the directory
// moves.
func where(rng hcl.Range) string {
	return fmt.Sprintf("%s:%d", filepath.Base(rng.Filename), rng.Start.Line)
}

// sentence turns a validator's message into a sentence about attribute
// name: "must be greater than zero" becomes "cpus must be greater than
// zero."
func sentence(name, msg string) string {
	if strings.HasPrefix(msg, "must ") && name != "" {
		msg = name + " " + msg
	} else if msg != "" && msg[0] >= 'a' && msg[0] <= 'z' {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// dedupe drops repeated diagnostics: the same local or expression is
// evaluated for every instance that uses it, and the user needs to read
// each mistake once.
func dedupe(diags hcl.Diagnostics) hcl.Diagnostics {
	seen := map[string]bool{}
	var out hcl.Diagnostics
	for _, d := range diags {
		key := fmt.Sprintf("%d\x00%s\x00%s", d.Severity, d.Summary, d.Detail)
		if d.Subject != nil {
			key += "\x00" + d.Subject.String()
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, d)
	}
	return out
}
