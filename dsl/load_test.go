package dsl

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

func mustLoad(t *testing.T, dir string, opts Options) *resource.Config {
	t.Helper()
	cfg, diags := Load(dir, opts)
	if diags.HasErrors() {
		var buf bytes.Buffer
		WriteDiagnostics(&buf, cfg.Files, diags, false)
		t.Fatalf("load %s:\n%s", dir, buf.String())
	}
	return cfg
}

func addr(t *testing.T, s string) resource.Addr {
	t.Helper()
	a, err := resource.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func addrs(as []resource.Addr) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func eval(t *testing.T, cfg *resource.Config, s string, deps map[resource.Addr]cty.Value) cty.Value {
	t.Helper()
	in := cfg.Instance(addr(t, s))
	if in == nil {
		t.Fatalf("no instance %s", s)
	}
	v, diags := in.Eval(deps)
	if diags.HasErrors() {
		t.Fatalf("eval %s: %s", s, diags.Error())
	}
	want := resource.SchemaOf(in.Addr.Kind).ImpliedType()
	if !v.Type().Equals(want) {
		t.Fatalf("eval %s: type %s, want %s", s, v.Type().GoString(), want.GoString())
	}
	return v
}

func TestLoadExpansionAndDeps(t *testing.T) {
	cfg := mustLoad(t, "testdata/valid/app", Options{Vars: map[string]string{"replicas": "2"}})
	abs, _ := filepath.Abs("testdata/valid/app")
	if cfg.Dir != abs || cfg.Project != "app" {
		t.Errorf("Dir, Project = %q, %q; want %q, app", cfg.Dir, cfg.Project, abs)
	}
	var got []string
	for _, in := range cfg.Instances {
		got = append(got, in.Addr.String())
	}
	want := []string{`image.app`, `network.lan["eu"]`, `network.lan["us"]`, `volume.data`, `container.web[0]`, `container.web[1]`, `container.proxy`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("instances = %q, want %q", got, want)
	}
	deps := map[string][]string{
		// image.app through local.image_ref; every network.lan instance
		// although one is indexed; volume.data directly.
		"container.web[1]": {`image.app`, `network.lan["eu"]`, `network.lan["us"]`, `volume.data`},
		// depends_on and a for expression over the counted container.
		"container.proxy": {`container.web[0]`, `container.web[1]`, `image.app`},
		"image.app":       {},
	}
	for s, want := range deps {
		if got := addrs(cfg.Instance(addr(t, s)).Deps); !reflect.DeepEqual(got, want) {
			t.Errorf("%s deps = %q, want %q", s, got, want)
		}
	}
	if len(cfg.Outputs) != 1 || cfg.Outputs[0].Description != "the web containers" {
		t.Fatalf("outputs = %+v", cfg.Outputs)
	}
	if got := addrs(cfg.Outputs[0].Deps); !reflect.DeepEqual(got, []string{"container.web[0]", "container.web[1]"}) {
		t.Errorf("output deps = %q", got)
	}
}

func TestEvalDefaultsPathsAndFunctions(t *testing.T) {
	cfg := mustLoad(t, "testdata/valid/app", Options{})
	web := eval(t, cfg, "container.web[0]", nil)
	checks := map[string]cty.Value{
		"name":         cty.StringVal("app-web-0"),
		"hostname":     cty.StringVal("web-v1-0"),
		"restart":      cty.StringVal("no"),
		"stop_timeout": cty.StringVal("10s"),
		"read_only":    cty.False,
		"labels":       cty.NullVal(cty.Map(cty.String)),
		"resources":    cty.NullVal(resource.ContainerSchema.Blocks["resources"].Schema.ImpliedType()),
	}
	for name, want := range checks {
		if got := web.GetAttr(name); !got.RawEquals(want) {
			t.Errorf("web.%s = %#v, want %#v", name, got, want)
		}
	}
	env := web.GetAttr("env")
	if got := env.Index(cty.StringVal("GREETING")).AsString(); got != "hello web-v1 eu us\n" {
		t.Errorf("templatefile rendered %q", got)
	}
	if got := env.Index(cty.StringVal("CONFIG")).AsString(); got != "workers = 4" {
		t.Errorf("file read %q", got)
	}
	mounts := web.GetAttr("mount").AsValueSlice()
	if got, want := mounts[0].GetAttr("bind").AsString(), filepath.Join(cfg.Dir, "html"); got != want {
		t.Errorf("bind = %q, want %q", got, want)
	}
	port := web.GetAttr("port").Index(cty.Zero)
	if port.GetAttr("protocol").AsString() != "tcp" || port.GetAttr("host_ip").AsString() != "0.0.0.0" {
		t.Errorf("port defaults not filled: %#v", port)
	}
	for _, name := range []string{"id", "ip_address", "ip_addresses"} {
		if web.GetAttr(name).IsKnown() {
			t.Errorf("computed %s is known", name)
		}
	}

	img := eval(t, cfg, "image.app", nil)
	if img.GetAttr("name").AsString() != "app/app" || img.GetAttr("rootfs").AsString() != filepath.Join(cfg.Dir, "rootfs") {
		t.Errorf("image = %#v", img)
	}
	eu := eval(t, cfg, `network.lan["eu"]`, nil)
	if eu.GetAttr("name").AsString() != "app-lan-eu" || eu.GetAttr("subnet").AsString() != "10.89.0.0/24" ||
		eu.GetAttr("labels").Index(cty.StringVal("zone")).AsString() != "eu" {
		t.Errorf("network = %#v", eu)
	}
	// An Optional+Computed attribute left unset is the driver's to fill.
	if eval(t, cfg, `network.lan["eu"]`, nil).GetAttr("gateway").IsKnown() {
		t.Error("unset gateway is known")
	}
}

func TestEvalUnknownPropagation(t *testing.T) {
	cfg := mustLoad(t, "testdata/valid/app", Options{})
	imgAddr := addr(t, "image.app")

	// Before the image is built its ref is unknown, and so is the
	// container's image, through local.image_ref.
	planned := eval(t, cfg, "image.app", nil)
	web := eval(t, cfg, "container.web[0]", map[resource.Addr]cty.Value{imgAddr: planned})
	if web.GetAttr("image").IsKnown() {
		t.Error("container image known although image ref is not")
	}
	if !web.GetAttr("hostname").IsKnown() {
		t.Error("hostname, which uses no resource, became unknown")
	}

	built := resource.WithAttrs(planned, map[string]cty.Value{
		"ref": cty.StringVal("app/app@sha256:abc"), "id": cty.StringVal("sha256:1"), "digest": cty.StringVal("sha256:abc"),
	})
	web = eval(t, cfg, "container.web[0]", map[resource.Addr]cty.Value{imgAddr: built})
	if got := web.GetAttr("image"); !got.RawEquals(cty.StringVal("app/app@sha256:abc")) {
		t.Errorf("image = %#v", got)
	}
	proxy := eval(t, cfg, "container.proxy", map[resource.Addr]cty.Value{imgAddr: built, addr(t, "container.web[0]"): web})
	if got := proxy.GetAttr("command"); !got.RawEquals(cty.ListVal([]cty.Value{cty.StringVal("web-v1-0")})) {
		t.Errorf("proxy command = %#v", got)
	}

	v, diags := cfg.Outputs[0].Eval(map[resource.Addr]cty.Value{addr(t, "container.web[0]"): web})
	if diags.HasErrors() || !v.RawEquals(cty.TupleVal([]cty.Value{cty.StringVal("app-web-0")})) {
		t.Errorf("output = %#v, %s", v, diags.Error())
	}
}

func TestVariablePrecedence(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.hcl"), `
variable "replicas" {
  type    = number
  default = 1
}
variable "tag" {}
container "web" {
  count = var.replicas
  image = "app:${var.tag}"
}
`)
	write(t, filepath.Join(dir, "a.vars"), "replicas = 3\ntag = \"file-a\"\n")
	write(t, filepath.Join(dir, "b.vars"), "tag = \"file-b\"\n")
	env := []string{"BERTH_VAR_replicas=2", "BERTH_VAR_tag=env", "PATH=/bin"}
	cases := []struct {
		name    string
		opts    Options
		n       int
		tag     string
		project string
	}{
		{"env over default", Options{Environ: env}, 2, "env", ""},
		{"var files in order over env", Options{Environ: env, VarFiles: []string{filepath.Join(dir, "a.vars"), filepath.Join(dir, "b.vars")}}, 3, "file-b", ""},
		{"-var over all", Options{Environ: env, VarFiles: []string{filepath.Join(dir, "a.vars")}, Vars: map[string]string{"replicas": "4", "tag": "flag"}}, 4, "flag", ""},
		{"project option", Options{Project: "shop", Vars: map[string]string{"tag": "x"}}, 1, "x", "shop"},
	}
	hashes := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustLoad(t, dir, c.opts)
			if len(cfg.Instances) != c.n {
				t.Fatalf("%d instances, want %d", len(cfg.Instances), c.n)
			}
			v := eval(t, cfg, "container.web[0]", nil)
			if got := v.GetAttr("image").AsString(); got != "app:"+c.tag {
				t.Errorf("image = %q, want app:%s", got, c.tag)
			}
			if c.project != "" && v.GetAttr("name").AsString() != c.project+"-web-0" {
				t.Errorf("name = %q with project %s", v.GetAttr("name").AsString(), c.project)
			}
			if hashes[cfg.Hash] {
				t.Errorf("hash %s repeats for other variable values", cfg.Hash)
			}
			hashes[cfg.Hash] = true
			if again := mustLoad(t, dir, c.opts); again.Hash != cfg.Hash {
				t.Error("hash differs between two loads of the same input")
			}
		})
	}
	before := mustLoad(t, dir, cases[0].opts).Hash
	write(t, filepath.Join(dir, "main.hcl"), "# changed\n"+string(must(os.ReadFile(filepath.Join(dir, "main.hcl")))))
	if mustLoad(t, dir, cases[0].opts).Hash == before {
		t.Error("hash unchanged after a file changed")
	}
}

func TestCollectionVariableFromFlag(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.hcl"), `
variable "ports" { type = list(number) }
variable "any" {}
container "web" {
  for_each = toset([for p in var.ports : tostring(p)])
  image    = var.any
  network {
    name = "lan"
  }
  port {
    target    = each.value
    published = each.value
  }
}
`)
	cfg := mustLoad(t, dir, Options{Vars: map[string]string{"ports": "[80, 443]", "any": "[1]"}})
	v := eval(t, cfg, `container.web["443"]`, nil)
	if v.GetAttr("image").AsString() != "[1]" {
		t.Errorf("untyped variable was not taken literally: %#v", v.GetAttr("image"))
	}
	if got := v.GetAttr("name").AsString(); got != filepath.Base(dir)+"-web-443" && !strings.HasSuffix(got, "-web-443") {
		t.Errorf("name = %q", got)
	}
}

func TestCountZeroAndEmptyForEach(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.hcl"), `
container "none" {
  count = 0
  image = "busybox"
}
network "none" {
  for_each = {}
}
container "user" {
  image   = "busybox"
  command = concat(container.none[*].id, [for k, n in network.none : n.name])
}
`)
	cfg := mustLoad(t, dir, Options{Project: "p"})
	if got := addrs(cfg.Instances[0].Deps); len(cfg.Instances) != 1 || len(got) != 0 {
		t.Fatalf("instances %v deps %v", cfg.Instances, got)
	}
	if got := eval(t, cfg, "container.user", nil).GetAttr("command"); got.LengthInt() != 0 {
		t.Errorf("command = %#v", got)
	}
}

func TestFence(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret"), "s3cret")
	dir := t.TempDir()
	write(t, filepath.Join(dir, "inside.txt"), "ok")
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "inside.txt"), filepath.Join(dir, "good-link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		expr, want, err string
	}{
		{`file("inside.txt")`, "ok", ""},
		{`file("good-link")`, "ok", ""},
		{`file("./sub/../inside.txt")`, "ok", ""},
		{`tostring(fileexists("inside.txt"))`, "true", ""},
		{`tostring(fileexists("nope.txt"))`, "false", ""},
		{`basename(abspath("x/y.txt"))`, "y.txt", ""},
		{`dirname("a/b/c")`, "a/b", ""},
		{`file("link")`, "", "path link is outside the configuration directory"},
		{`file("../x")`, "", "path ../x is outside the configuration directory"},
		{`tostring(fileexists("../nope"))`, "", "path ../nope is outside the configuration directory"},
		{`file("` + filepath.Join(outside, "secret") + `")`, "", "is outside the configuration directory"},
		{`templatefile("link", {})`, "", "path link is outside the configuration directory"},
	} {
		write(t, filepath.Join(dir, "main.hcl"), "container \"c\" {\n  image = "+c.expr+"\n}\n")
		cfg, diags := Load(dir, Options{})
		if c.err != "" {
			if !strings.Contains(diags.Error(), c.err) {
				t.Errorf("%s: diags %q, want %q", c.expr, diags.Error(), c.err)
			}
			continue
		}
		if diags.HasErrors() {
			t.Errorf("%s: %s", c.expr, diags.Error())
			continue
		}
		if got := eval(t, cfg, "container.c", nil).GetAttr("image").AsString(); got != c.want {
			t.Errorf("%s = %q, want %q", c.expr, got, c.want)
		}
	}
}

func TestFunctions(t *testing.T) {
	cases := map[string]string{
		`upper("a")`:                                       "A",
		`replace("a-b-c", "-", "_")`:                       "a_b_c",
		`replace("a1b22", "/[0-9]+/", "#")`:                "a#b#",
		`join(",", sort(["b", "a"]))`:                      "a,b",
		`format("%s:%d", "x", 8)`:                          "x:8",
		`jsonencode({ a = 1 })`:                            `{"a":1}`,
		`base64decode(base64encode("hi"))`:                 "hi",
		`sha256("")`:                                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		`md5("")`:                                          "d41d8cd98f00b204e9800998ecf8427e",
		`urlencode("a b")`:                                 "a+b",
		`tostring(try(tonumber("x"), 7))`:                  "7",
		`tostring(can(tonumber("x")))`:                     "false",
		`tostring(length(setunion(["a"], ["b"])))`:         "2",
		`lookup({ a = "1" }, "b", "none")`:                 "none",
		`element(flatten([["a"], ["b"]]), 1)`:              "b",
		`tostring(max(1, 5, 3))`:                           "5",
		`title(trimspace(" hello "))`:                      "Hello",
		`jsondecode("{\"k\": \"v\"}").k`:                   "v",
		`join("", [for k, v in zipmap(["x"], ["y"]) : k])`: "x",
	}
	dir := t.TempDir()
	for expr, want := range cases {
		write(t, filepath.Join(dir, "main.hcl"), "container \"c\" {\n  image = "+expr+"\n}\n")
		cfg, diags := Load(dir, Options{})
		if diags.HasErrors() {
			t.Errorf("%s: %s", expr, diags.Error())
			continue
		}
		if got := eval(t, cfg, "container.c", nil).GetAttr("image").AsString(); got != want {
			t.Errorf("%s = %q, want %q", expr, got, want)
		}
	}
}

func TestWriteDiagnosticsRelativeNames(t *testing.T) {
	abs, _ := filepath.Abs("testdata/invalid/multi")
	cfg, diags := Load(abs, Options{})
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, cfg.Files, diags, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), abs) || !strings.Contains(buf.String(), "on testdata/invalid/multi/a.hcl line 6") {
		t.Errorf("names not relative, or snippet missing:\n%s", buf.String())
	}
	buf.Reset()
	if err := WriteDiagnostics(&buf, cfg.Files, diags, true); err != nil || !strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("no colour in terminal output (err %v):\n%s", err, buf.String())
	}
}

func TestLoadMissingDir(t *testing.T) {
	cfg, diags := Load(filepath.Join(t.TempDir(), "nope"), Options{})
	if cfg == nil || cfg.Files == nil || !diags.HasErrors() {
		t.Fatalf("cfg %v diags %v", cfg, diags)
	}
}

func TestInvalidProjectName(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.hcl"), "volume \"v\" {}\n")
	_, diags := Load(dir, Options{Project: "my app"})
	if !diags.HasErrors() || diags[0].Summary != "Invalid project name" {
		t.Errorf("diags = %v", diags)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The applier evaluates instances in parallel; Eval must not share
// mutable state (run with -race).
func TestEvalConcurrent(t *testing.T) {
	cfg := mustLoad(t, "testdata/valid/app", Options{Vars: map[string]string{"replicas": "8"}})
	done := make(chan struct{})
	for _, in := range cfg.Instances {
		go func() {
			defer func() { done <- struct{}{} }()
			if _, diags := in.Eval(nil); diags.HasErrors() {
				t.Error(diags.Error())
			}
		}()
	}
	for range cfg.Instances {
		<-done
	}
}

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"imag", "image", 1}, {"digets", "digest", 2}, {"kitten", "sitting", 3}, {"", "abc", 3}} {
		if got := distance(c.a, c.b); got != c.want {
			t.Errorf("distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
