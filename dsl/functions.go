package dsl

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions returns the function table of a configuration in dir. It is the
// set Terraform users expect, minus the functions whose result changes from
// run to run (uuid, timestamp): a plan must be reproducible from the same
// files. The file functions are fenced to dir, so a configuration received
// from someone else cannot read the host's secrets.
func functions(dir string) map[string]function.Function {
	fs := map[string]function.Function{
		"abs":      stdlib.AbsoluteFunc,
		"ceil":     stdlib.CeilFunc,
		"floor":    stdlib.FloorFunc,
		"log":      stdlib.LogFunc,
		"max":      stdlib.MaxFunc,
		"min":      stdlib.MinFunc,
		"parseint": stdlib.ParseIntFunc,
		"pow":      stdlib.PowFunc,
		"signum":   stdlib.SignumFunc,

		"chomp":      stdlib.ChompFunc,
		"format":     stdlib.FormatFunc,
		"formatlist": stdlib.FormatListFunc,
		"indent":     stdlib.IndentFunc,
		"join":       stdlib.JoinFunc,
		"lower":      stdlib.LowerFunc,
		"regex":      stdlib.RegexFunc,
		"regexall":   stdlib.RegexAllFunc,
		"replace":    replaceFunc,
		"split":      stdlib.SplitFunc,
		"strlen":     stdlib.StrlenFunc,
		"strrev":     stdlib.ReverseFunc,
		"substr":     stdlib.SubstrFunc,
		"title":      stdlib.TitleFunc,
		"trim":       stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc,
		"trimspace":  stdlib.TrimSpaceFunc,
		"trimsuffix": stdlib.TrimSuffixFunc,
		"upper":      stdlib.UpperFunc,

		"chunklist":       stdlib.ChunklistFunc,
		"coalesce":        stdlib.CoalesceFunc,
		"coalescelist":    stdlib.CoalesceListFunc,
		"compact":         stdlib.CompactFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"distinct":        stdlib.DistinctFunc,
		"element":         stdlib.ElementFunc,
		"flatten":         stdlib.FlattenFunc,
		"index":           stdlib.IndexFunc,
		"keys":            stdlib.KeysFunc,
		"length":          stdlib.LengthFunc,
		"lookup":          stdlib.LookupFunc,
		"merge":           stdlib.MergeFunc,
		"range":           stdlib.RangeFunc,
		"reverse":         stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"setproduct":      stdlib.SetProductFunc,
		"setsubtract":     stdlib.SetSubtractFunc,
		"setunion":        stdlib.SetUnionFunc,
		"slice":           stdlib.SliceFunc,
		"sort":            stdlib.SortFunc,
		"values":          stdlib.ValuesFunc,
		"zipmap":          stdlib.ZipmapFunc,

		"base64decode": base64DecodeFunc,
		"base64encode": stringFunc(func(s string) (string, error) { return base64.StdEncoding.EncodeToString([]byte(s)), nil }),
		"csvdecode":    stdlib.CSVDecodeFunc,
		"jsondecode":   stdlib.JSONDecodeFunc,
		"jsonencode":   stdlib.JSONEncodeFunc,
		"urlencode":    stringFunc(func(s string) (string, error) { return url.QueryEscape(s), nil }),

		"md5":    hashFunc(md5.New),
		"sha1":   hashFunc(sha1.New),
		"sha256": hashFunc(sha256.New),
		"sha512": hashFunc(sha512.New),

		"tobool":   stdlib.MakeToFunc(cty.Bool),
		"tolist":   stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":    stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"tonumber": stdlib.MakeToFunc(cty.Number),
		"toset":    stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring": stdlib.MakeToFunc(cty.String),

		"can": tryfunc.CanFunc,
		"try": tryfunc.TryFunc,

		"abspath": stringFunc(func(p string) (string, error) {
			if filepath.IsAbs(p) {
				return filepath.Clean(p), nil
			}
			return filepath.Join(dir, p), nil
		}),
		"basename":   stringFunc(func(p string) (string, error) { return filepath.Base(p), nil }),
		"dirname":    stringFunc(func(p string) (string, error) { return filepath.Dir(p), nil }),
		"file":       fileFunc(dir),
		"fileexists": fileExistsFunc(dir),
	}
	// templatefile sees every function but itself: a template that renders
	// a template could recurse without end.
	inner := make(map[string]function.Function, len(fs))
	for name, f := range fs {
		inner[name] = f
	}
	fs["templatefile"] = templateFileFunc(dir, inner)
	return fs
}

func stringFunc(f func(string) (string, error)) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			s, err := f(args[0].AsString())
			if err != nil {
				return cty.UnknownVal(cty.String), err
			}
			return cty.StringVal(s), nil
		},
	})
}

func hashFunc(h func() hash.Hash) function.Function {
	return stringFunc(func(s string) (string, error) {
		sum := h()
		sum.Write([]byte(s))
		return hex.EncodeToString(sum.Sum(nil)), nil
	})
}

var base64DecodeFunc = stringFunc(func(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("the string is not valid base64: %w", err)
	}
	if !utf8.Valid(b) {
		return "", errors.New("the decoded bytes are not valid UTF-8; berth strings hold text only")
	}
	return string(b), nil
})

// replaceFunc is Terraform's replace: a substring written /like this/ is a
// regular expression.
var replaceFunc = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "str", Type: cty.String},
		{Name: "substr", Type: cty.String},
		{Name: "replace", Type: cty.String},
	},
	Type: function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		sub := args[1].AsString()
		if len(sub) > 1 && strings.HasPrefix(sub, "/") && strings.HasSuffix(sub, "/") {
			return stdlib.RegexReplace(args[0], cty.StringVal(sub[1:len(sub)-1]), args[2])
		}
		return stdlib.Replace(args[0], args[1], args[2])
	},
})

// fenced makes p absolute against dir, resolves symlinks, and refuses a
// result outside dir. A path that does not exist is checked as written, so
// fileexists can answer false for it.
func fenced(dir, p string) (string, error) {
	abs := p
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(dir, abs)
	}
	abs = filepath.Clean(abs)
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		root = dir
	}
	resolved, err := filepath.EvalSymlinks(abs)
	switch {
	case err == nil:
		abs = resolved
	case errors.Is(err, os.ErrNotExist):
		// Compare the unresolved path against the unresolved root.
		root = dir
	default:
		return "", err
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("path %s is outside the configuration directory; berth reads only files in it and below, so copy the file there", p)
	}
	return abs, nil
}

func readFenced(dir, p string) (string, error) {
	abs, err := fenced(dir, p)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("no file exists at %s; the path is relative to the configuration directory", p)
		}
		return "", err
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%s is not UTF-8 text; berth strings hold text only", p)
	}
	return string(b), nil
}

func fileFunc(dir string) function.Function {
	return stringFunc(func(p string) (string, error) { return readFenced(dir, p) })
}

func fileExistsFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			abs, err := fenced(dir, args[0].AsString())
			if err != nil {
				return cty.UnknownVal(cty.Bool), err
			}
			fi, err := os.Stat(abs)
			switch {
			case err == nil:
				return cty.BoolVal(fi.Mode().IsRegular()), nil
			case errors.Is(err, os.ErrNotExist):
				return cty.False, nil
			}
			return cty.UnknownVal(cty.Bool), err
		},
	})
}

// templateFileFunc renders a template file with only the given variables in
// scope, as Terraform's templatefile does: a template names its inputs.
func templateFileFunc(dir string, funcs map[string]function.Function) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p, vars := args[0].AsString(), args[1]
			if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
				return cty.UnknownVal(cty.String), errors.New("vars must be an object or a map, such as { port = 80 }")
			}
			if !vars.IsWhollyKnown() {
				return cty.UnknownVal(cty.String), nil
			}
			src, err := readFenced(dir, p)
			if err != nil {
				return cty.UnknownVal(cty.String), err
			}
			expr, diags := hclsyntax.ParseTemplate([]byte(src), p, hcl.InitialPos)
			if diags.HasErrors() {
				return cty.UnknownVal(cty.String), fmt.Errorf("template %s: %s", p, diags.Error())
			}
			values := map[string]cty.Value{}
			if !vars.IsNull() {
				for k, v := range vars.AsValueMap() {
					if !hclsyntax.ValidIdentifier(k) {
						return cty.UnknownVal(cty.String), fmt.Errorf("template variable %q is not a valid name", k)
					}
					values[k] = v
				}
			}
			for _, t := range expr.Variables() {
				if _, ok := values[t.RootName()]; !ok {
					names := make([]string, 0, len(values))
					for k := range values {
						names = append(names, k)
					}
					sort.Strings(names)
					return cty.UnknownVal(cty.String), fmt.Errorf("template %s refers to %q at line %d, which is not in vars (given: %s); add it to the vars argument",
						p, t.RootName(), t.SourceRange().Start.Line, strings.Join(names, ", "))
				}
			}
			v, diags := expr.Value(&hcl.EvalContext{Variables: values, Functions: funcs})
			if diags.HasErrors() {
				return cty.UnknownVal(cty.String), fmt.Errorf("template %s: %s", p, diags.Error())
			}
			s, err := stdlib.MakeToFunc(cty.String).Call([]cty.Value{v})
			if err != nil {
				return cty.UnknownVal(cty.String), fmt.Errorf("template %s does not render to a string: %w", p, err)
			}
			return s, nil
		},
	})
}
