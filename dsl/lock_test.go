package dsl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

const pullConfig = `
variable "tag" {
  default = "1.4"
}

image "app" {
  pull = "registry.example.com/team/app:${var.tag}"
}

image "db" {
  pull = "registry.example.com/team/db:16"
}

image "pinned" {
  pull = "registry.example.com/team/cache@` + digestB + `"
}

image "local" {
  rootfs = "./rootfs"
}
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func evalImage(t *testing.T, cfg *resource.Config, name string) cty.Value {
	t.Helper()
	in := cfg.Instance(resource.Addr{Kind: resource.KindImage, Name: name})
	if in == nil {
		t.Fatalf("no image %s", name)
	}
	v, diags := in.EvalWith(nil)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return v
}

// TestLockPinsImages: the lock file is read beside the configuration, not
// as configuration; a pinned reference evaluates with its repo_digest, an
// unpinned one with it unknown (the plan resolves it), another image
// with none to give.
func TestLockPinsImages(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.hcl": pullConfig,
		LockFile:   string(FormatLock(map[string]string{"registry.example.com/team/app:1.4": digestA})),
	})
	cfg, diags := Load(dir, Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if n := len(cfg.Instances); n != 4 {
		t.Errorf("%d instances: the lock file was read as configuration", n)
	}
	if got := evalImage(t, cfg, "app").GetAttr("repo_digest"); !got.RawEquals(cty.StringVal(digestA)) {
		t.Errorf("app: repo_digest %#v, want the pinned %s", got, digestA)
	}
	if got := evalImage(t, cfg, "db").GetAttr("repo_digest"); got.IsKnown() {
		t.Errorf("db: repo_digest %#v, want unknown until planned", got)
	}

	// A different tag is another reference: not pinned.
	cfg2, _ := Load(dir, Options{Vars: map[string]string{"tag": "1.5"}})
	if got := evalImage(t, cfg2, "app").GetAttr("repo_digest"); got.IsKnown() {
		t.Errorf("app:1.5: repo_digest %#v, want unknown", got)
	}

	// What a plan resolved is pinned in memory, for the apply, and in the
	// file; a pin that exists is never moved by Pin.
	planned := []cty.Value{
		resource.WithAttrs(evalImage(t, cfg, "app"), map[string]cty.Value{"repo_digest": cty.StringVal(digestB)}),
		resource.WithAttrs(evalImage(t, cfg, "db"), map[string]cty.Value{"repo_digest": cty.StringVal(digestB)}),
		resource.WithAttrs(evalImage(t, cfg, "pinned"), map[string]cty.Value{"repo_digest": cty.StringVal(digestB)}),
		evalImage(t, cfg, "local"),
	}
	pins := Unpinned(cfg, planned)
	if len(pins) != 1 || pins["registry.example.com/team/db:16"] != digestB {
		t.Fatalf("unpinned %v, want db only (app is pinned, cache by digest, local not pulled)", pins)
	}
	if err := Pin(cfg, map[string]string{"registry.example.com/team/db:16": digestB, "registry.example.com/team/app:1.4": digestB}); err != nil {
		t.Fatal(err)
	}
	if got := evalImage(t, cfg, "db").GetAttr("repo_digest"); !got.RawEquals(cty.StringVal(digestB)) {
		t.Errorf("db after Pin: %#v", got)
	}
	b, err := os.ReadFile(filepath.Join(dir, LockFile))
	if err != nil {
		t.Fatal(err)
	}
	want := `image "registry.example.com/team/app:1.4" {
  digest = "` + digestA + `"
}

image "registry.example.com/team/db:16" {
  digest = "` + digestB + `"
}
`
	if !strings.HasPrefix(string(b), "# berth.lock.hcl") || !strings.HasSuffix(string(b), want) {
		t.Errorf("lock file:\n%s\nwant it to end with\n%s", b, want)
	}

	// berth lock -update moved app's pin after this configuration was
	// loaded: pinning another reference keeps the move.
	if _, err := WriteLock(dir, map[string]string{"registry.example.com/team/app:1.4": digestB, "registry.example.com/team/db:16": digestB}); err != nil {
		t.Fatal(err)
	}
	if err := Pin(cfg, map[string]string{"registry.example.com/team/cache:7": digestA}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, LockFile))
	if !strings.Contains(string(b), "app:1.4\" {\n  digest = \""+digestB) || !strings.Contains(string(b), "cache:7") {
		t.Errorf("a pin moved on disk was moved back, or the new one not written:\n%s", b)
	}
	if _, err := WriteLock(dir, map[string]string{"registry.example.com/team/app:1.4": digestA, "registry.example.com/team/db:16": digestB}); err != nil {
		t.Fatal(err)
	}
	again, diags := Load(dir, Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if len(again.Lock) != 2 || again.Lock["registry.example.com/team/app:1.4"] != digestA {
		t.Errorf("read back %v", again.Lock)
	}
	if wrote, err := WriteLock(dir, again.Lock); err != nil || wrote {
		t.Errorf("rewriting the same pins: wrote %v, %v; want nothing written", wrote, err)
	}
	// Formatting is stable: berth fmt leaves the file alone.
	if changed, diags := FormatDir(dir, false); len(changed) != 0 || diags.HasErrors() {
		t.Errorf("fmt would change %v (%v)", changed, diags)
	}

	refs, unknown := PullRefs(again)
	if len(refs) != 3 || len(unknown) != 0 || refs["registry.example.com/team/db:16"][0].Name != "db" {
		t.Errorf("pull refs %v, unknown %v", refs, unknown)
	}
}

func TestNoLockFileWrittenWithoutPins(t *testing.T) {
	dir := t.TempDir()
	if wrote, err := WriteLock(dir, nil); err != nil || wrote {
		t.Errorf("wrote %v, %v", wrote, err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockFile)); !os.IsNotExist(err) {
		t.Errorf("a lock file without pins exists: %v", err)
	}
}
