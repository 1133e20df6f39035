package plan_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/seed-e88ffcd2/berth/apply"
	"github.com/seed-e88ffcd2/berth/dsl"
	"github.com/seed-e88ffcd2/berth/internal/fakes"
	"github.com/seed-e88ffcd2/berth/plan"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/seed-e88ffcd2/berth/state"
	"github.com/zclconf/go-cty/cty"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// preview stands in for the image driver: an image's digest is derived
// from its rootfs path, as a content hash would be.
func preview(_ context.Context, addr resource.Addr, _, desired cty.Value) (cty.Value, error) {
	if addr.Kind != resource.KindImage || !desired.GetAttr("rootfs").IsKnown() {
		return desired, nil
	}
	sum := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(filepath.Base(desired.GetAttr("rootfs").AsString()))))
	return resource.WithAttrs(desired, map[string]cty.Value{
		"id":          cty.StringVal(sum),
		"digest":      cty.StringVal(sum),
		"ref":         cty.StringVal(desired.GetAttr("name").AsString() + "@" + sum),
		"repo_digest": cty.NullVal(cty.String), // not pulled
		"build_key":   cty.NullVal(cty.String), // not built
	}), nil
}

type nopHooks struct{}

func (nopHooks) PreApply(apply.Step)                        {}
func (nopHooks) PostApply(apply.Step, error, time.Duration) {}

type harness struct {
	t     *testing.T
	store *state.Store
	drv   *fakes.Driver
}

func newHarness(t *testing.T) *harness {
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &harness{t: t, store: store, drv: fakes.NewDriver()}
}

func (h *harness) load(dir string) *resource.Config {
	h.t.Helper()
	cfg, diags := dsl.Load(filepath.Join("testdata", "plans", dir), dsl.Options{Project: "demo"})
	if diags.HasErrors() {
		h.t.Fatalf("loading %s: %s", dir, diags.Error())
	}
	return cfg
}

func (h *harness) plan(cfg *resource.Config, opts plan.Options) (*plan.Plan, hcl.Diagnostics) {
	h.t.Helper()
	snap, err := h.store.Snapshot(cfg.Project)
	if err != nil {
		h.t.Fatal(err)
	}
	observed := map[resource.Addr]resource.Observation{}
	for addr, obj := range snap.Objects {
		observed[addr], _ = h.drv.Observe(context.Background(), addr, obj.Value)
	}
	opts.Preview = preview
	return plan.Compute(context.Background(), cfg, snap, observed, opts)
}

func (h *harness) apply(dir string) {
	h.t.Helper()
	p, diags := h.plan(h.load(dir), plan.Options{})
	if diags.HasErrors() {
		h.t.Fatal(diags)
	}
	if _, err := apply.Run(context.Background(), p, h.drv.Set(), h.store, nopHooks{}, apply.Options{}); err != nil {
		h.t.Fatal(err)
	}
}

// TestPlanGolden applies a "before" configuration with fake drivers, changes
// the host as the case says, plans an "after" configuration and compares
// the text and JSON renderings with testdata/plans/NAME.{txt,json}.
func TestPlanGolden(t *testing.T) {
	tests := []struct {
		name, before, after string
		drift               func(d *fakes.Driver)
		opts                plan.Options
	}{
		{name: "create", after: "base"},
		{name: "no_changes", before: "base", after: "base"},
		{name: "replace_command", before: "base", after: "changed_command"},
		{name: "update_in_place", before: "base", after: "in_place"},
		{name: "image_digest_changed", before: "base", after: "image_changed"},
		{name: "delete_removed", before: "base", after: "removed"},
		{name: "destroy", before: "base", after: "base", opts: plan.Options{Destroy: true}},
		{name: "count_and_for_each", after: "counted"},
		{name: "drift_removed", before: "base", after: "base", drift: func(d *fakes.Driver) {
			delete(d.Objects, resource.Addr{Kind: resource.KindContainer, Name: "web"})
		}},
		{name: "drift_exited", before: "base", after: "base", drift: func(d *fakes.Driver) {
			d.Health[resource.Addr{Kind: resource.KindContainer, Name: "web"}] = resource.Observation{
				Health: resource.Degraded, Reason: "container exited with status 137 (out of memory)"}
		}},
		{name: "drift_stopped", before: "base", after: "base", drift: func(d *fakes.Driver) {
			d.Health[resource.Addr{Kind: resource.KindContainer, Name: "web"}] = resource.Observation{
				Health: resource.Stopped, Reason: "container exited with status 137 (stopped with berth stop or kill)"}
		}},
		{name: "drift_stopped_and_changed", before: "base", after: "changed_command", drift: func(d *fakes.Driver) {
			d.Health[resource.Addr{Kind: resource.KindContainer, Name: "web"}] = resource.Observation{
				Health: resource.Stopped, Reason: "container exited with status 0"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.before != "" {
				h.apply(tt.before)
			}
			if tt.drift != nil {
				tt.drift(h.drv)
			}
			p, diags := h.plan(h.load(tt.after), tt.opts)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			var text, js bytes.Buffer
			if err := plan.RenderText(&text, p, false); err != nil {
				t.Fatal(err)
			}
			if err := plan.RenderJSON(&js, p); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name+".txt", scrub(text.Bytes()))
			golden(t, tt.name+".json", scrub(js.Bytes()))
		})
	}
}

// scrub replaces the random lineage and the checkout's location so the
// goldens are the same everywhere.
func scrub(b []byte) []byte {
	abs, _ := filepath.Abs(filepath.Join("testdata", "plans"))
	lines := strings.Split(strings.ReplaceAll(string(b), abs, "TESTDATA"), "\n")
	for i, l := range lines {
		if strings.Contains(l, `"lineage":`) {
			lines[i] = `  "lineage": "LINEAGE",`
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "plans", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./plan -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./plan -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestRefusals(t *testing.T) {
	t.Run("volume with data", func(t *testing.T) {
		h := newHarness(t)
		h.apply("base")
		h.drv.Health[resource.Addr{Kind: resource.KindVolume, Name: "data"}] = resource.Observation{DataBytes: 12345}
		_, diags := h.plan(h.load("base"), plan.Options{Destroy: true})
		if !diags.HasErrors() || !strings.Contains(diags.Error(), "volume.data holds 12.1 KiB of data") || !strings.Contains(diags.Error(), "-delete-volume-data") {
			t.Fatalf("destroying a volume with data: diags = %v, want a refusal naming the flag", diags)
		}
		if _, diags := h.plan(h.load("base"), plan.Options{Destroy: true, DeleteVolumeData: true}); diags.HasErrors() {
			t.Fatalf("with -delete-volume-data: %v", diags)
		}
	})
	t.Run("port published twice", func(t *testing.T) {
		h := newHarness(t)
		cfg := h.load("base")
		second := *cfg.Instance(resource.Addr{Kind: resource.KindContainer, Name: "web"})
		second.Addr.Name = "web2"
		eval := second.Eval
		second.Eval = func(d map[resource.Addr]cty.Value) (cty.Value, hcl.Diagnostics) {
			v, diags := eval(d)
			return resource.WithAttrs(v, map[string]cty.Value{"name": cty.StringVal("demo-web2")}), diags
		}
		cfg.Instances = append(cfg.Instances, &second)
		_, diags := h.plan(cfg, plan.Options{})
		if !diags.HasErrors() || !strings.Contains(diags.Error(), "18080/tcp is published twice") {
			t.Fatalf("diags = %v, want a host port conflict", diags)
		}
	})
}

func TestSavedPlanRefusedWhenStale(t *testing.T) {
	h := newHarness(t)
	cfg := h.load("base")
	p, _ := h.plan(cfg, plan.Options{})
	var buf bytes.Buffer
	if err := plan.WriteFile(&buf, p, map[string]string{"dir": "base"}); err != nil {
		t.Fatal(err)
	}
	saved, err := plan.ReadFile(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := h.plan(cfg, plan.Options{})
	if err := again.CheckSaved(saved); err != nil {
		t.Fatalf("fresh plan refused: %v", err)
	}
	h.apply("base")
	moved, _ := h.plan(cfg, plan.Options{})
	if err := moved.CheckSaved(saved); err == nil || !strings.Contains(err.Error(), "state changed") {
		t.Fatalf("after an apply: err = %v, want the state changed", err)
	}
	other, _ := h.plan(h.load("changed_command"), plan.Options{})
	if err := other.CheckSaved(saved); err == nil || !strings.Contains(err.Error(), "configuration") {
		t.Fatalf("another configuration: err = %v, want the configuration changed", err)
	}
}

// TestOldStateRecords: a record written before the schema gained
// attributes plans without a panic and without a change.
func TestOldStateRecords(t *testing.T) {
	h := newHarness(t)
	h.apply("removed")
	vol := resource.Addr{Kind: resource.KindVolume, Name: "data"}
	snap, _ := h.store.Snapshot("demo")
	old := snap.Objects[vol]
	old.Value = cty.ObjectVal(map[string]cty.Value{"name": old.Value.GetAttr("name"), "path": old.Value.GetAttr("path")})
	if err := h.store.Put("demo", old); err != nil {
		t.Fatal(err)
	}
	p, diags := h.plan(h.load("removed"), plan.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if ch := p.Change(vol); ch.Action != plan.NoOp {
		t.Errorf("old volume record: %s %v, want no-op", ch.Action, ch.Reasons)
	}
}
