package dsl

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixtureOptions reads "# test: -var name=value" and
// "# test: -var-file path" lines from a fixture: the inputs of a case are
// written next to the configuration they feed.
func fixtureOptions(t *testing.T, src []byte) Options {
	t.Helper()
	opts := Options{Vars: map[string]string{}}
	for _, line := range strings.Split(string(src), "\n") {
		arg, ok := strings.CutPrefix(line, "# test: ")
		if !ok {
			continue
		}
		switch flagName, val, _ := strings.Cut(arg, " "); flagName {
		case "-var":
			name, value, _ := strings.Cut(val, "=")
			opts.Vars[name] = value
		case "-var-file":
			opts.VarFiles = append(opts.VarFiles, val)
		default:
			t.Fatalf("unknown test option %q", line)
		}
	}
	return opts
}

// TestInvalid loads each invalid configuration and compares the rendered
// diagnostics with its golden file. A NAME.hcl is a single-file case; a
// directory NAME is a multi-file one.
func TestInvalid(t *testing.T) {
	entries, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name, isFile := strings.CutSuffix(e.Name(), ".hcl")
		if !isFile && !e.IsDir() {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata/invalid", e.Name())
			var opts Options
			var render func() ([]byte, bool)
			if isFile {
				src, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				opts = fixtureOptions(t, src)
				render = func() ([]byte, bool) {
					cfg, diags := load("testdata/invalid", []string{e.Name()}, opts)
					var buf bytes.Buffer
					if err := WriteDiagnostics(&buf, cfg.Files, diags, false); err != nil {
						t.Fatal(err)
					}
					return buf.Bytes(), diags.HasErrors()
				}
			} else {
				render = func() ([]byte, bool) {
					cfg, diags := Load(path, opts)
					var buf bytes.Buffer
					if err := WriteDiagnostics(&buf, cfg.Files, diags, false); err != nil {
						t.Fatal(err)
					}
					return buf.Bytes(), diags.HasErrors()
				}
			}
			got, hasErrors := render()
			if !hasErrors {
				t.Fatalf("no errors; an invalid configuration must fail to load")
			}
			golden := filepath.Join("testdata/invalid", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./dsl -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("diagnostics differ from %s (go test ./dsl -update rewrites it)\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
	if n < 25 {
		t.Errorf("only %d invalid cases; every diagnostic class needs one", n)
	}
}
