package dsl

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
	"github.com/seed-e88ffcd2/berth/resource"
)

// LockFile is the lock file beside the configuration: the digest each
// image pull reference resolved to, so that a configuration and its lock
// give the same images on every host and at every later plan, Nix-style,
// until `berth lock -update` moves them. It is HCL, sorted, and meant to
// be committed and reviewed with the configuration:
//
//	image "registry.example.com/team/app:1.4" {
//	  digest = "sha256:…"
//	}
//
// Load reads it (it is not configuration: the *.hcl files it loads leave
// it out) into Config.Lock; plan and apply add the references they
// resolved (Unpinned, Pin); `berth lock` rewrites it (WriteLock).
const LockFile = "berth.lock.hcl"

const lockHeader = `# berth.lock.hcl: the digest each image pull reference of this configuration
# resolved to. berth plan and apply add references not pinned yet; a pinned
# reference keeps its digest until "berth lock -update". Commit this file.

`

var lockFileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "image", LabelNames: []string{"reference"}}},
}

var lockImageSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "digest", Required: true}},
}

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// readLock parses dir's lock file, if any, with the loader's parser (so
// its diagnostics show the file's lines) into reference → digest.
func readLock(p *hclparse.Parser, dir string) (map[string]string, hcl.Diagnostics) {
	pins := map[string]string{}
	path := filepath.Join(dir, LockFile)
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return pins, nil
	}
	f, diags := p.ParseHCLFile(path)
	if diags.HasErrors() || f == nil {
		return pins, diags
	}
	content, d := f.Body.Content(lockFileSchema)
	diags = append(diags, d...)
	seen := map[string]hcl.Range{}
	for _, b := range content.Blocks {
		ref, refRange := b.Labels[0], b.LabelRanges[0]
		body, d := b.Body.Content(lockImageSchema)
		diags = append(diags, d...)
		if _, err := resource.ParsePullRef(ref); err != nil || strings.Contains(ref, "@") {
			msg := "A reference by digest pins itself and has no place in the lock file."
			if err != nil {
				msg = sentence("", err.Error())
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid lock entry",
				Detail: msg + " Remove the block, or run berth lock to rewrite the file.", Subject: refRange.Ptr()})
			continue
		}
		if prev, dup := seen[ref]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate lock entry",
				Detail:  fmt.Sprintf("%q is pinned already at %s. Keep one of the blocks, or run berth lock -update %s to resolve it again.", ref, where(prev), ref),
				Subject: refRange.Ptr()})
			continue
		}
		attr := body.Attributes["digest"]
		if attr == nil {
			continue // reported as a missing argument
		}
		v, d := attr.Expr.Value(nil)
		if d.HasErrors() {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid lock entry",
				Detail: "digest must be a literal string such as \"sha256:…\"; the lock file takes no expressions.", Subject: attr.Expr.Range().Ptr()})
			continue
		}
		if v.Type() != cty.String || v.IsNull() || !digestPattern.MatchString(v.AsString()) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid lock entry",
				Detail:  fmt.Sprintf("digest must be \"sha256:\" and 64 lowercase hex digits. Run berth lock -update %s to resolve the reference again.", ref),
				Subject: attr.Expr.Range().Ptr()})
			continue
		}
		seen[ref] = refRange
		pins[ref] = v.AsString()
	}
	return pins, diags
}

// pin gives an evaluated image the digest the lock file pins its pull
// reference to, as its repo_digest. Other images are left as they are.
func pin(lock map[string]string, v cty.Value) cty.Value {
	if v.IsNull() || !v.IsKnown() {
		return v
	}
	pull := v.GetAttr("pull")
	if !pull.IsKnown() || pull.IsNull() {
		return v
	}
	if d, ok := lock[pull.AsString()]; ok {
		return resource.WithAttrs(v, map[string]cty.Value{"repo_digest": cty.StringVal(d)})
	}
	return v
}

// FormatLock is the content of a lock file holding pins, sorted by
// reference: the same pins give the same bytes.
func FormatLock(pins map[string]string) []byte {
	refs := make([]string, 0, len(pins))
	for r := range pins {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte(lockHeader)}})
	for i, r := range refs {
		if i > 0 {
			body.AppendNewline()
		}
		b := body.AppendNewBlock("image", []string{r})
		b.Body().SetAttributeValue("digest", cty.StringVal(pins[r]))
	}
	return hclwrite.Format(f.Bytes())
}

// WriteLock writes dir's lock file with exactly pins, atomically, unless
// it holds them already; it reports whether it wrote. Without pins and
// without a file, it writes nothing.
func WriteLock(dir string, pins map[string]string) (bool, error) {
	path := filepath.Join(dir, LockFile)
	old, err := os.ReadFile(path)
	if os.IsNotExist(err) && len(pins) == 0 {
		return false, nil
	}
	b := FormatLock(pins)
	if err == nil && bytes.Equal(old, b) {
		return false, nil
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return false, fmt.Errorf("writing %s: %w", LockFile, err)
	}
	return true, nil
}

// Unpinned returns the pull references of planned image values that
// cfg.Lock does not pin yet, with the digests the plan resolved them to.
// A reference by digest pins itself and is left out.
func Unpinned(cfg *resource.Config, planned []cty.Value) map[string]string {
	out := map[string]string{}
	for _, v := range planned {
		if v.IsNull() || !v.IsKnown() || !v.Type().IsObjectType() || !v.Type().HasAttribute("pull") {
			continue
		}
		pull, rd := v.GetAttr("pull"), v.GetAttr("repo_digest")
		if !pull.IsKnown() || pull.IsNull() || !rd.IsKnown() || rd.IsNull() || strings.Contains(pull.AsString(), "@") {
			continue
		}
		if _, ok := cfg.Lock[pull.AsString()]; !ok {
			out[pull.AsString()] = rd.AsString()
		}
	}
	return out
}

// Pin adds pins to cfg.Lock, so every evaluation from now on uses them
// (the apply runs with what the plan resolved), and writes the lock file.
// Pins already there are kept: only berth lock -update moves a pin.
func Pin(cfg *resource.Config, pins map[string]string) error {
	if len(pins) == 0 {
		return nil
	}
	if cfg.Lock == nil {
		cfg.Lock = map[string]string{}
	}
	for r, d := range pins {
		if _, ok := cfg.Lock[r]; !ok {
			cfg.Lock[r] = d
		}
	}
	// The file as it is now, not as it was loaded: a berth lock -update
	// that ran meanwhile moved pins this process must not move back.
	onDisk, diags := readLock(hclparse.NewParser(), cfg.Dir)
	if diags.HasErrors() {
		return diags
	}
	for r, d := range cfg.Lock {
		if _, ok := onDisk[r]; !ok {
			onDisk[r] = d
		}
	}
	_, err := WriteLock(cfg.Dir, onDisk)
	return err
}

// PullRefs lists the pull references of the configuration's images, each
// with the instances that pull it, evaluated without any resource's value.
// Instances whose reference depends on another resource are returned
// apart: they are pinned when planned.
func PullRefs(cfg *resource.Config) (refs map[string][]resource.Addr, unknown []resource.Addr) {
	refs = map[string][]resource.Addr{}
	for _, in := range cfg.Instances {
		if in.Addr.Kind != resource.KindImage {
			continue
		}
		v, _ := in.Eval(map[resource.Addr]cty.Value{})
		if v.IsNull() || !v.IsKnown() {
			unknown = append(unknown, in.Addr)
			continue
		}
		pull := v.GetAttr("pull")
		switch {
		case !pull.IsKnown():
			unknown = append(unknown, in.Addr)
		case !pull.IsNull():
			refs[pull.AsString()] = append(refs[pull.AsString()], in.Addr)
		}
	}
	return refs, unknown
}
