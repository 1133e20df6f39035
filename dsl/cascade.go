package dsl

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// dropCascades removes "Missing required argument" for blocks holding a
// syntax error: the parser recovered only part of such a block, so the
// argument is usually there, and the follow-on error would send the user
// looking for the wrong mistake.
func dropCascades(files map[string]*hcl.File, diags hcl.Diagnostics) hcl.Diagnostics {
	var syntax []*hcl.Diagnostic
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Subject != nil && isSyntaxError(d) {
			syntax = append(syntax, d)
		}
	}
	if len(syntax) == 0 {
		return diags
	}
	out := diags[:0:0]
	for _, d := range diags {
		if d.Summary == "Missing required argument" && d.Subject != nil && blockHasSyntaxError(files[d.Subject.Filename], d.Subject.Start, syntax) {
			continue
		}
		if d.Summary == "Invalid single-argument block definition" {
			// hcl says what is wrong, not what to write instead.
			c := *d
			c.Detail += " Write a block with several arguments over several lines, one argument per line."
			d = &c
		}
		out = append(out, d)
	}
	return out
}

// isSyntaxError tells the parser's diagnostics from the decoder's: the
// parser names no expression or evaluation context.
func isSyntaxError(d *hcl.Diagnostic) bool {
	return d.Expression == nil && d.EvalContext == nil && d.Summary != "Missing required argument" &&
		d.Summary != "Unsupported argument" && d.Summary != "Unsupported block type"
}

// blockHasSyntaxError finds the innermost block whose braces hold pos and
// reports whether a syntax error lies within it.
func blockHasSyntaxError(f *hcl.File, pos hcl.Pos, syntax []*hcl.Diagnostic) bool {
	if f == nil {
		return false
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return false
	}
	var inner *hclsyntax.Block
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for _, blk := range b.Blocks {
			r := blk.Range()
			if r.ContainsPos(pos) || blk.OpenBraceRange.ContainsPos(pos) {
				inner = blk
				walk(blk.Body)
			}
		}
	}
	walk(body)
	if inner == nil {
		return false
	}
	r := inner.Range()
	for _, s := range syntax {
		if s.Subject.Filename == r.Filename && r.ContainsPos(s.Subject.Start) {
			return true
		}
	}
	return false
}
