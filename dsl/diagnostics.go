package dsl

import (
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics renders diagnostics with source snippets, file names
// relative to the working directory. With color (a terminal) the text is
// wrapped at 78 columns; without, lines are left whole for logs and
// tools that do their own wrapping.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	cwd, _ := os.Getwd()
	rel := func(name string) string {
		if cwd == "" || !filepath.IsAbs(name) {
			return name
		}
		r, err := filepath.Rel(cwd, name)
		if err != nil || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return name
		}
		return r
	}
	relFiles := make(map[string]*hcl.File, len(files))
	for name, f := range files {
		relFiles[rel(name)] = f
	}
	relRange := func(r *hcl.Range) *hcl.Range {
		if r == nil {
			return nil
		}
		c := *r
		c.Filename = rel(c.Filename)
		return &c
	}
	out := make(hcl.Diagnostics, len(diags))
	for i, d := range diags {
		c := *d
		c.Subject, c.Context = relRange(d.Subject), relRange(d.Context)
		out[i] = &c
	}
	width := uint(0)
	if color {
		width = 78
	}
	return hcl.NewDiagnosticTextWriter(w, relFiles, width, color).WriteDiagnostics(out)
}
