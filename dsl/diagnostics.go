package dsl

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/mitchellh/go-wordwrap"
)

// WriteDiagnostics renders diagnostics with source snippets, file names
// relative to the working directory. With color (a terminal) the text is
// wrapped at 78 columns; without, lines are left whole for logs and
// tools that do their own wrapping.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	cwd, _ := os.Getwd()
	relFiles, out := RelativeTo(cwd, files, diags)
	for _, d := range out {
		if err := writeDiagnostic(w, relFiles, d, color); err != nil {
			return err
		}
	}
	return nil
}

// writeDiagnostic writes one diagnostic: severity and summary, the place
// as file, line and column, the source line with the range marked under
// it (with colour, also highlighted), and the detail. hcl's own writer
// names no column and marks the range only with colour.
func writeDiagnostic(w io.Writer, files map[string]*hcl.File, d *hcl.Diagnostic, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + "\x1b[0m"
	}
	var b strings.Builder
	if d.Severity == hcl.DiagWarning {
		b.WriteString(paint("\x1b[33;1m", "Warning: ") + paint("\x1b[1m", d.Summary) + "\n\n")
	} else {
		b.WriteString(paint("\x1b[31;1m", "Error: ") + paint("\x1b[1m", d.Summary) + "\n\n")
	}
	if r := d.Subject; r != nil {
		fmt.Fprintf(&b, "  on %s line %d, column %d", r.Filename, r.Start.Line, r.Start.Column)
		f := files[r.Filename]
		if f != nil {
			// The native syntax's navigator names the enclosing block,
			// as hcl's own writer does.
			if cs, ok := f.Nav.(interface{ ContextString(int) string }); ok {
				if ctx := cs.ContextString(r.Start.Byte); ctx != "" {
					b.WriteString(", in " + ctx)
				}
			}
		}
		b.WriteString(":\n")
		if f != nil {
			lines := strings.Split(string(f.Bytes), "\n")
			if n := r.Start.Line; n >= 1 && n <= len(lines) {
				line := strings.TrimRight(lines[n-1], "\r")
				prefix := fmt.Sprintf("  %3d: ", n)
				start := min(max(r.Start.Column-1, 0), len(line))
				end := len(line)
				if r.End.Line == r.Start.Line {
					end = min(max(r.End.Column-1, start+1), len(line))
				}
				if end <= start {
					end = min(start+1, len(line))
				}
				b.WriteString(prefix + line[:start] + paint("\x1b[4m", line[start:end]) + line[end:] + "\n")
				if end > start {
					b.WriteString(strings.Repeat(" ", len(prefix)+displayWidth(line[:start])) + paint("\x1b[31m", strings.Repeat("^", displayWidth(line[start:end]))) + "\n")
				}
			}
		}
		b.WriteString("\n")
	}
	if d.Detail != "" {
		detail := d.Detail
		if color {
			detail = wordwrap.WrapString(detail, 78)
		}
		b.WriteString(detail + "\n\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// displayWidth counts characters, so the marker lines up under text that
// is not ASCII; tabs count as the terminal would show them, one cell.
func displayWidth(s string) int { return utf8.RuneCountInString(s) }

// RelativeTo names the files of diags and files relative to cwd where they
// lie under it (the agent renders a session's diagnostics for the user's
// working directory, not its own).
func RelativeTo(cwd string, files map[string]*hcl.File, diags hcl.Diagnostics) (map[string]*hcl.File, hcl.Diagnostics) {
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
	return relFiles, out
}
