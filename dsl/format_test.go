package dsl

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestFormat(t *testing.T) {
	src := "container \"web\" {\nimage=\"busybox\"\n    restart =   \"always\"\nport {\ntarget=80\npublished = 8080\n}\n}\n"
	want := "container \"web\" {\n  image   = \"busybox\"\n  restart = \"always\"\n  port {\n    target    = 80\n    published = 8080\n  }\n}\n"
	got := Format([]byte(src))
	if string(got) != want {
		t.Fatalf("Format:\n%s\nwant:\n%s", got, want)
	}
	if again := Format(got); string(again) != string(got) {
		t.Errorf("Format is not idempotent:\n%s", again)
	}
	// The valid fixtures are kept formatted.
	files, _ := filepath.Glob("testdata/valid/*/*.hcl")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if string(Format(b)) != string(b) {
			t.Errorf("%s is not formatted", f)
		}
	}
}

func TestFormatDir(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.hcl"), "volume \"v\" {\nlabels={a=\"b\"}\n}\n")
	write(t, filepath.Join(dir, "b.hcl"), "volume \"w\" {}\n")
	write(t, filepath.Join(dir, "c.hcl"), "volume \"x\" {\n")
	write(t, filepath.Join(dir, "notes.txt"), "not=hcl\n")

	changed, diags := FormatDir(dir, false)
	if !reflect.DeepEqual(changed, []string{filepath.Join(dir, "a.hcl")}) {
		t.Errorf("changed = %q", changed)
	}
	if !diags.HasErrors() || diags[0].Subject.Filename != filepath.Join(dir, "c.hcl") {
		t.Errorf("syntax error not reported: %v", diags)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.hcl")); string(b) != "volume \"v\" {\nlabels={a=\"b\"}\n}\n" {
		t.Error("FormatDir wrote without write")
	}

	if changed, _ = FormatDir(dir, true); len(changed) != 1 {
		t.Errorf("changed = %q", changed)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.hcl")); string(b) != "volume \"v\" {\n  labels = { a = \"b\" }\n}\n" {
		t.Errorf("a.hcl = %q", b)
	}
	if changed, _ = FormatDir(dir, true); len(changed) != 0 {
		t.Errorf("second run changed %q", changed)
	}
}
