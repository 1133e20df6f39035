// Package berth_test holds repository-wide checks: the direction of the
// data (no import arrow runs backwards) and a comment on every package.
package berth_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/seed-e88ffcd2/berth"

// allowed lists, for each package (directory), the berth packages its
// non-test files may import. A prefix ending in "/" allows a subtree.
var allowed = map[string][]string{
	"resource":            {},
	"dsl":                 {"resource", "internal/atomicfile"},
	"state":               {"resource"},
	"plan":                {"resource", "state"},
	"apply":               {"resource", "plan", "state", "driver"},
	"driver":              {"resource"},
	"driver/image":        {"resource", "driver", "internal/atomicfile"},
	"driver/network":      {"resource", "driver", "internal/atomicfile"},
	"driver/volume":       {"resource", "driver", "internal/atomicfile", "internal/filelock"},
	"driver/container":    {"resource", "driver", "internal/atomicfile", "internal/filelock", "internal/monitor"},
	"build":               {"resource", "driver", "driver/image", "driver/container", "internal/atomicfile"},
	"agent":               {"resource", "state", "driver", "driver/", "agent/api", "agent/supervise", "internal/logfile", "build"},
	"agent/api":           {"resource"},
	"agent/supervise":     {"resource", "driver/container", "internal/atomicfile"},
	"internal/atomicfile": {},
	"internal/filelock":   {},
	"internal/logfile":    {},
	"internal/monitor":    {"internal/atomicfile", "internal/logfile"},
	"cmd/berth-monitor":   {"internal/monitor"},
	"internal/fakes":      {"resource", "driver"},
	"internal/testutil":   {},
	"cmd/berth":           {"resource", "dsl", "state", "plan", "apply", "agent", "agent/api", "internal/logfile"},
	"examples/hello/app":  {},
}

func TestImportDirection(t *testing.T) {
	for dir, imports := range packages(t) {
		rules, ok := allowed[dir]
		if !ok {
			t.Errorf("package %s has no entry in deps_test.go: say what it may import", dir)
			continue
		}
		for _, imp := range imports {
			rel, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if !permitted(rel, rules) {
				t.Errorf("%s imports %s: the data flows dsl → resource ← plan → apply → driver; see ARCHITECTURE.md", dir, rel)
			}
		}
	}
}

func permitted(pkg string, rules []string) bool {
	for _, r := range rules {
		if pkg == r || strings.HasSuffix(r, "/") && strings.HasPrefix(pkg, r) {
			return true
		}
	}
	return false
}

func TestPackageComments(t *testing.T) {
	fset := token.NewFileSet()
	for dir := range packages(t) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		found := false
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(fset, f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil && (strings.HasPrefix(af.Doc.Text(), "Package ") || strings.HasPrefix(af.Doc.Text(), "Command ")) {
				found = true
			}
		}
		if !found {
			t.Errorf("package %s has no package comment saying what it owns", dir)
		}
	}
}

// packages maps each directory holding non-test Go files to their imports.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata" || d.Name() == "bin" || d.Name() == "rootfs") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		af, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if _, ok := out[dir]; !ok {
			out[dir] = nil
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out[dir] = append(out[dir], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
