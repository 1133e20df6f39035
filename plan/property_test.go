package plan_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/seed-e88ffcd2/berth/apply"
	"github.com/seed-e88ffcd2/berth/internal/fakes"
	"github.com/seed-e88ffcd2/berth/plan"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/seed-e88ffcd2/berth/state"
	"github.com/zclconf/go-cty/cty"
)

// randomConfig makes a configuration of networks, volumes and containers
// whose containers refer to a random subset of the networks and volumes,
// with random in-place and replacing attributes.
func randomConfig(r *rand.Rand) *resource.Config {
	cfg := &resource.Config{Project: "prop"}
	var nets, vols []resource.Addr
	for i := range r.IntN(3) {
		a := resource.Addr{Kind: resource.KindNetwork, Name: fmt.Sprintf("n%d", i)}
		nets = append(nets, a)
		cfg.Instances = append(cfg.Instances, fakes.Instance(a, nil, func(map[resource.Addr]cty.Value) map[string]cty.Value {
			return map[string]cty.Value{"name": cty.StringVal("prop-" + a.Name)}
		}))
	}
	for i := range r.IntN(3) {
		a := resource.Addr{Kind: resource.KindVolume, Name: fmt.Sprintf("v%d", i)}
		vols = append(vols, a)
		cfg.Instances = append(cfg.Instances, fakes.Instance(a, nil, func(map[resource.Addr]cty.Value) map[string]cty.Value {
			return map[string]cty.Value{"name": cty.StringVal("prop-" + a.Name)}
		}))
	}
	for i := range r.IntN(5) {
		a := resource.Addr{Kind: resource.KindContainer, Name: "c", Key: resource.IntKey(i)}
		var deps []resource.Addr
		for _, n := range nets {
			if r.IntN(2) == 0 {
				deps = append(deps, n)
			}
		}
		for _, v := range vols {
			if r.IntN(2) == 0 {
				deps = append(deps, v)
			}
		}
		command := fmt.Sprintf("run-%d", r.IntN(2))
		restart := []string{"no", "always"}[r.IntN(2)]
		cfg.Instances = append(cfg.Instances, fakes.Instance(a, deps, func(d map[resource.Addr]cty.Value) map[string]cty.Value {
			attrs := map[string]cty.Value{
				"name":    cty.StringVal(fmt.Sprintf("prop-c-%s", a.Key)),
				"image":   cty.StringVal("img"),
				"command": cty.ListVal([]cty.Value{cty.StringVal(command)}),
				"restart": cty.StringVal(restart),
			}
			var networks []cty.Value
			for _, dep := range deps {
				if dep.Kind == resource.KindNetwork {
					networks = append(networks, cty.ObjectVal(map[string]cty.Value{
						"name": fakes.Attr(d, dep, "name"), "aliases": cty.NullVal(cty.List(cty.String)), "ipv4_address": cty.NullVal(cty.String),
					}))
				}
			}
			if len(networks) > 0 {
				attrs["network"] = cty.ListVal(networks)
			}
			return attrs
		}))
	}
	return cfg
}

// TestPlanProperties: for random pairs of configurations applied in
// sequence, every instance and every recorded object lands in exactly one
// change, and the plan of an applied configuration is empty.
func TestPlanProperties(t *testing.T) {
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed, 7))
		store, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		d := fakes.NewDriver()
		for step := range 3 {
			cfg := randomConfig(r)
			snap, _ := store.Snapshot(cfg.Project)
			p, diags := plan.Compute(context.Background(), cfg, snap, nil, plan.Options{})
			if diags.HasErrors() {
				t.Fatalf("seed %d step %d: %v", seed, step, diags)
			}
			seen := map[resource.Addr]int{}
			for _, ch := range p.Changes {
				seen[ch.Addr]++
			}
			for _, in := range cfg.Instances {
				if seen[in.Addr] != 1 {
					t.Fatalf("seed %d step %d: %s appears in %d changes", seed, step, in.Addr, seen[in.Addr])
				}
			}
			for addr := range snap.Objects {
				if seen[addr] != 1 {
					t.Fatalf("seed %d step %d: recorded %s appears in %d changes", seed, step, addr, seen[addr])
				}
			}
			if len(seen) != len(p.Changes) {
				t.Fatalf("seed %d step %d: duplicate changes", seed, step)
			}
			if _, err := apply.Run(context.Background(), p, d.Set(), store, nopHooks{}, apply.Options{Parallelism: 1 + r.IntN(4)}); err != nil {
				t.Fatalf("seed %d step %d: apply: %v", seed, step, err)
			}
			snap, _ = store.Snapshot(cfg.Project)
			if again, _ := plan.Compute(context.Background(), cfg, snap, nil, plan.Options{}); again.HasChanges() {
				for _, ch := range again.Changes {
					if ch.Action != plan.NoOp {
						t.Errorf("seed %d step %d: after apply, %s still needs %s %v", seed, step, ch.Addr, ch.Action, ch.Reasons)
					}
				}
				t.FailNow()
			}
			if len(snap.Objects) != len(cfg.Instances) || len(d.Objects) != len(cfg.Instances) {
				t.Fatalf("seed %d step %d: %d recorded, %d exist, %d configured", seed, step, len(snap.Objects), len(d.Objects), len(cfg.Instances))
			}
		}
		store.Close()
	}
}
