package dsl

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
)

// Format returns src in canonical layout: aligned equals signs, two-space
// indentation, normalised spacing. It is meant for valid HCL; FormatDir
// checks the syntax first.
func Format(src []byte) []byte {
	return hclwrite.Format(src)
}

// FormatDir formats the *.hcl files of dir and returns the paths of those
// whose layout changed, writing them back when write is set. A file with
// syntax errors is left alone and its errors are returned, since
// formatting cannot be trusted to keep its meaning.
func FormatDir(dir string, write bool) (changed []string, diags hcl.Diagnostics) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read the configuration directory",
			Detail: err.Error() + ". Name a directory holding *.hcl files."}}
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".hcl") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		src, err := os.ReadFile(path)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read file", Detail: err.Error() + "."})
			continue
		}
		if _, d := hclsyntax.ParseConfig(src, path, hcl.InitialPos); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		out := Format(src)
		if bytes.Equal(out, src) {
			continue
		}
		changed = append(changed, path)
		if !write {
			continue
		}
		fi, err := os.Stat(path)
		if err == nil {
			err = atomicfile.WriteFile(path, out, fi.Mode().Perm())
		}
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot write file",
				Detail: err.Error() + ". Check the file's permissions."})
		}
	}
	return changed, diags
}
