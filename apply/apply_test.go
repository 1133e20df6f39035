package apply_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/apply"
	"github.com/seed-e88ffcd2/berth/internal/fakes"
	"github.com/seed-e88ffcd2/berth/plan"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/seed-e88ffcd2/berth/state"
	"github.com/zclconf/go-cty/cty"
)

var (
	img = resource.Addr{Kind: resource.KindImage, Name: "app"}
	net = resource.Addr{Kind: resource.KindNetwork, Name: "lan"}
	vol = resource.Addr{Kind: resource.KindVolume, Name: "data"}
	web = resource.Addr{Kind: resource.KindContainer, Name: "web"}
)

// config is an image, a network, a volume and a container using all three;
// change alters the container's command so a second apply has work to do.
func config(command string) *resource.Config {
	return &resource.Config{Project: "t", Hash: command, Instances: []*resource.Instance{
		fakes.Instance(img, nil, func(map[resource.Addr]cty.Value) map[string]cty.Value {
			return map[string]cty.Value{"name": cty.StringVal("t/app"), "rootfs": cty.StringVal("/x")}
		}),
		fakes.Instance(net, nil, func(map[resource.Addr]cty.Value) map[string]cty.Value {
			return map[string]cty.Value{"name": cty.StringVal("t-lan")}
		}),
		fakes.Instance(vol, nil, func(map[resource.Addr]cty.Value) map[string]cty.Value {
			return map[string]cty.Value{"name": cty.StringVal("t-data")}
		}),
		fakes.Instance(web, []resource.Addr{img, net, vol}, func(d map[resource.Addr]cty.Value) map[string]cty.Value {
			return map[string]cty.Value{
				"name":    cty.StringVal("t-web"),
				"image":   fakes.Attr(d, img, "ref"),
				"command": cty.ListVal([]cty.Value{cty.StringVal(command)}),
				"network": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
					"name": fakes.Attr(d, net, "name"), "aliases": cty.NullVal(cty.List(cty.String)), "ipv4_address": cty.NullVal(cty.String),
				})}),
			}
		}),
	}}
}

func openStore(t *testing.T) *state.Store {
	t.Helper()
	s, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type nopHooks struct{}

func (nopHooks) PreApply(apply.Step)                        {}
func (nopHooks) PostApply(apply.Step, error, time.Duration) {}

func computePlan(t *testing.T, cfg *resource.Config, store *state.Store, d *fakes.Driver, opts plan.Options) *plan.Plan {
	t.Helper()
	snap, err := store.Snapshot(cfg.Project)
	if err != nil {
		t.Fatal(err)
	}
	observed := map[resource.Addr]resource.Observation{}
	for addr, obj := range snap.Objects {
		observed[addr], _ = d.Observe(context.Background(), addr, obj.Value)
	}
	p, diags := plan.Compute(context.Background(), cfg, snap, observed, opts)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return p
}

func index(t *testing.T, calls []string, call string) int {
	t.Helper()
	i := slices.Index(calls, call)
	if i < 0 {
		t.Fatalf("no call %q in %v", call, calls)
	}
	return i
}

func TestApplyOrdersByDependencies(t *testing.T) {
	store, d := openStore(t), fakes.NewDriver()
	cfg := config("serve")
	p := computePlan(t, cfg, store, d, plan.Options{})
	if got := p.Summary(); got.Add != 4 {
		t.Fatalf("summary %+v, want 4 to add", got)
	}
	snap, err := apply.Run(context.Background(), p, d.Set(), store, nopHooks{}, apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Objects) != 4 {
		t.Fatalf("state has %d objects, want 4", len(snap.Objects))
	}
	for _, dep := range []resource.Addr{img, net, vol} {
		if index(t, d.Calls, "create "+dep.String()) > index(t, d.Calls, "create container.web") {
			t.Errorf("container created before %s: %v", dep, d.Calls)
		}
	}
	// The container's image is the image's computed ref, known only after
	// the image was created.
	if got := snap.Objects[web].Value.GetAttr("image").AsString(); got != "image.app-ref" {
		t.Errorf("container image = %q, want the image's ref", got)
	}

	// Plan of an applied configuration is empty.
	if p := computePlan(t, cfg, store, d, plan.Options{}); p.HasChanges() {
		t.Errorf("second plan has changes: %+v", p.Summary())
	}

	// Destroy deletes in reverse order.
	d.Calls = nil
	p = computePlan(t, cfg, store, d, plan.Options{Destroy: true})
	if _, err := apply.Run(context.Background(), p, d.Set(), store, nopHooks{}, apply.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, dep := range []resource.Addr{img, net, vol} {
		if index(t, d.Calls, "delete "+dep.String()) < index(t, d.Calls, "delete container.web") {
			t.Errorf("%s deleted before the container: %v", dep, d.Calls)
		}
	}
	if snap, _ := store.Snapshot("t"); len(snap.Objects) != 0 {
		t.Errorf("state after destroy holds %d objects", len(snap.Objects))
	}
}

func TestReplaceDeletesThenCreates(t *testing.T) {
	store, d := openStore(t), fakes.NewDriver()
	run := func(cfg *resource.Config) *plan.Plan {
		p := computePlan(t, cfg, store, d, plan.Options{})
		if _, err := apply.Run(context.Background(), p, d.Set(), store, nopHooks{}, apply.Options{}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run(config("serve"))
	d.Calls = nil
	p := run(config("serve --verbose"))
	ch := p.Change(web)
	if ch.Action != plan.Replace || !slices.Equal(ch.Reasons, []string{"command changed"}) {
		t.Fatalf("change %s %v, want replace because the command changed", ch.Action, ch.Reasons)
	}
	if want := []string{"delete container.web", "create container.web"}; !slices.Equal(d.Calls, want) {
		t.Errorf("calls %v, want %v", d.Calls, want)
	}
}

func TestFailureRecordsWhatWasDone(t *testing.T) {
	store, d := openStore(t), fakes.NewDriver()
	d.FailOn["create network.lan"] = errors.New("bridge exploded")
	p := computePlan(t, config("serve"), store, d, plan.Options{})
	snap, err := apply.Run(context.Background(), p, d.Set(), store, nopHooks{}, apply.Options{Parallelism: 1})
	if err == nil {
		t.Fatal("apply succeeded with a failing driver")
	}
	if slices.Contains(d.Calls, "create container.web") {
		t.Error("the container was created although its network failed")
	}
	if !strings.Contains(err.Error(), "not started: create container.web") {
		t.Errorf("the error does not name what was not started: %v", err)
	}
	// What was created before the failure is recorded; nothing else.
	for addr := range snap.Objects {
		if _, ok := d.Objects[addr]; !ok {
			t.Errorf("state records %s, which does not exist", addr)
		}
	}
	for addr := range d.Objects {
		if snap.Objects[addr] == nil {
			t.Errorf("%s exists but is not recorded", addr)
		}
	}
	// The next plan repairs the rest.
	delete(d.FailOn, "create network.lan")
	p = computePlan(t, config("serve"), store, d, plan.Options{})
	if _, err := apply.Run(context.Background(), p, d.Set(), store, nopHooks{}, apply.Options{}); err != nil {
		t.Fatal(err)
	}
	if p := computePlan(t, config("serve"), store, d, plan.Options{}); p.HasChanges() {
		t.Errorf("plan after repair has changes: %+v", p.Summary())
	}
}

func TestStopSchedulesNothingNew(t *testing.T) {
	store, d := openStore(t), fakes.NewDriver()
	stop := make(chan struct{})
	close(stop)
	p := computePlan(t, config("serve"), store, d, plan.Options{})
	_, err := apply.Run(context.Background(), p, d.Set(), store, nopHooks{}, apply.Options{Parallelism: 1, Stop: stop})
	if !errors.Is(err, apply.ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	// Stop was closed before Run began: nothing may start.
	if len(d.Calls) > 0 {
		t.Errorf("%d changes ran after stop: %v", len(d.Calls), d.Calls)
	}
}

func TestParallelismIsBounded(t *testing.T) {
	cfg := &resource.Config{Project: "t"}
	for i := range 12 {
		addr := resource.Addr{Kind: resource.KindVolume, Name: "v", Key: resource.IntKey(i)}
		cfg.Instances = append(cfg.Instances, fakes.Instance(addr, nil, func(map[resource.Addr]cty.Value) map[string]cty.Value {
			return map[string]cty.Value{"name": cty.StringVal(addr.String())}
		}))
	}
	for _, par := range []int{1, 3} {
		store, d := openStore(t), fakes.NewDriver()
		d.Delay = 5 * time.Millisecond
		p := computePlan(t, cfg, store, d, plan.Options{})
		if _, err := apply.Run(context.Background(), p, d.Set(), store, nopHooks{}, apply.Options{Parallelism: par}); err != nil {
			t.Fatal(err)
		}
		if got := int(d.MaxInflight.Load()); got != par {
			t.Errorf("parallelism %d: %d calls ran at once at most, want exactly %d", par, got, par)
		}
	}
}

func TestDriftIsRepaired(t *testing.T) {
	store, d := openStore(t), fakes.NewDriver()
	cfg := config("serve")
	p := computePlan(t, cfg, store, d, plan.Options{})
	if _, err := apply.Run(context.Background(), p, d.Set(), store, nopHooks{}, apply.Options{}); err != nil {
		t.Fatal(err)
	}
	// The network vanishes behind berth's back: it is created again, and
	// the container attached to it is replaced.
	delete(d.Objects, net)
	d.Health[web] = resource.Observation{Health: resource.Healthy}
	p = computePlan(t, cfg, store, d, plan.Options{})
	if a := p.Change(net).Action; a != plan.Create {
		t.Errorf("network: %s, want create", a)
	}
	if ch := p.Change(web); ch.Action != plan.Replace || !slices.Contains(ch.Reasons, "network.lan is recreated") {
		t.Errorf("container: %s %v, want replace because the network is recreated", ch.Action, ch.Reasons)
	}
}

func TestPrepareFailureChangesNothing(t *testing.T) {
	store, d := openStore(t), fakes.NewDriver()
	drivers := d.Set()
	drivers[resource.KindContainer] = fakes.Preparing{Driver: d}
	if _, err := apply.Run(context.Background(), computePlan(t, config("serve"), store, d, plan.Options{}), drivers, store, nopHooks{}, apply.Options{}); err != nil {
		t.Fatal(err)
	}
	before, _ := store.Snapshot("t")
	if len(before.Objects) == 0 {
		t.Fatal("nothing recorded after the first apply")
	}
	// The replacement cannot be had (a build fails): nothing is deleted.
	d.Calls = nil
	d.FailOn["prepare container.web"] = errors.New("RUN exit 7")
	p := computePlan(t, config("serve --verbose"), store, d, plan.Options{})
	_, err := apply.Run(context.Background(), p, drivers, store, nopHooks{}, apply.Options{})
	if err == nil || !strings.Contains(err.Error(), "prepare failed, so nothing was changed") {
		t.Fatalf("apply = %v, want the prepare's failure", err)
	}
	if want := []string{"prepare container.web"}; !slices.Equal(d.Calls, want) {
		t.Errorf("calls %v, want only %v", d.Calls, want)
	}
	after, _ := store.Snapshot("t")
	if before.Serial != after.Serial || len(after.Objects) != len(before.Objects) {
		t.Errorf("the state changed: serial %d → %d", before.Serial, after.Serial)
	}
	// Once it can be had, it is prepared first, then replaced.
	delete(d.FailOn, "prepare container.web")
	d.Calls = nil
	if _, err := apply.Run(context.Background(), p, drivers, store, nopHooks{}, apply.Options{}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"prepare container.web", "delete container.web", "create container.web"}; !slices.Equal(d.Calls, want) {
		t.Errorf("calls %v, want %v", d.Calls, want)
	}
}
