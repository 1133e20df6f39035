package plan_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/apply"
	"github.com/seed-e88ffcd2/berth/dsl"
	"github.com/seed-e88ffcd2/berth/internal/fakes"
	"github.com/seed-e88ffcd2/berth/plan"
	"github.com/seed-e88ffcd2/berth/state"
)

// benchConfig writes a configuration of one image, one network and n
// containers, each with a port, a volume and resources.
func benchConfig(b *testing.B, n int) string {
	dir := filepath.Join(b.TempDir(), "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString("image \"app\" {\n  rootfs = \"./rootfs\"\n}\n\nnetwork \"net\" {}\n\n")
	for i := range n {
		fmt.Fprintf(&sb, `volume "v%[1]d" {}

container "c%[1]d" {
  image = image.app.ref
  env   = { INDEX = "%[1]d" }
  network {
    name = network.net.name
  }
  port {
    published = %[2]d
    target    = 80
  }
  mount {
    volume = volume.v%[1]d.name
    target = "/data"
  }
  resources {
    memory = "64M"
  }
}

`, i, 20000+i)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkPlan reports how long loading and planning a configuration of
// 100 containers (and their 100 volumes) takes, from an empty state and
// from an applied one (the common "no changes" case).
func BenchmarkPlan(b *testing.B) {
	dir := benchConfig(b, 100)
	store, err := state.Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	load := func() *plan.Plan {
		cfg, diags := dsl.Load(dir, dsl.Options{})
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		snap, err := store.Snapshot(cfg.Project)
		if err != nil {
			b.Fatal(err)
		}
		p, diags := plan.Compute(context.Background(), cfg, snap, nil, plan.Options{Preview: preview})
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		return p
	}
	b.Run("load", func(b *testing.B) {
		for b.Loop() {
			if _, diags := dsl.Load(dir, dsl.Options{}); diags.HasErrors() {
				b.Fatal(diags)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/load")
	})
	b.Run("empty-state", func(b *testing.B) {
		for b.Loop() {
			load()
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/plan")
	})
	d := fakes.NewDriver()
	if _, err := apply.Run(context.Background(), load(), d.Set(), store, nopHooks{}, apply.Options{}); err != nil {
		b.Fatal(err)
	}
	b.Run("no-changes", func(b *testing.B) {
		for b.Loop() {
			if load().HasChanges() {
				b.Fatal("changes after apply")
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/plan")
	})
}

// BenchmarkApplyOverhead measures what berth itself adds to an apply of
// 201 objects — graph, evaluation, one state transaction per change — with
// drivers that do nothing.
func BenchmarkApplyOverhead(b *testing.B) {
	dir := benchConfig(b, 100)
	cfg, diags := dsl.Load(dir, dsl.Options{})
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	for b.Loop() {
		b.StopTimer()
		store, err := state.Open(filepath.Join(b.TempDir(), "state.db"))
		if err != nil {
			b.Fatal(err)
		}
		snap, _ := store.Snapshot(cfg.Project)
		p, _ := plan.Compute(context.Background(), cfg, snap, nil, plan.Options{Preview: preview})
		b.StartTimer()
		if _, err := apply.Run(context.Background(), p, fakes.NewDriver().Set(), store, nopHooks{}, apply.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/apply")
}
