// Package fakes holds in-memory stand-ins for unit tests of the planner and
// applier: a driver that records its calls and can be told to fail, and
// configurations built without HCL. Integration tests use the real drivers.
package fakes

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// Driver is a driver.Driver that keeps objects in memory, fills computed
// attributes with placeholders, and records every call in order.
type Driver struct {
	mu       sync.Mutex
	Objects  map[resource.Addr]cty.Value
	Calls    []string // "create container.web", ...
	FailOn   map[string]error
	Delay    time.Duration
	Health   map[resource.Addr]resource.Observation
	inflight atomic.Int32
	// MaxInflight is the most calls that ran at once.
	MaxInflight atomic.Int32
}

var _ driver.Driver = (*Driver)(nil)

// NewDriver returns an empty fake driver.
func NewDriver() *Driver {
	return &Driver{Objects: map[resource.Addr]cty.Value{}, FailOn: map[string]error{}, Health: map[resource.Addr]resource.Observation{}}
}

// Set returns a driver.Set serving every kind with d.
func (d *Driver) Set() driver.Set {
	s := driver.Set{}
	for _, k := range resource.Kinds {
		s[k] = d
	}
	return s
}

func (d *Driver) call(op string, addr resource.Addr) error {
	n := d.inflight.Add(1)
	defer d.inflight.Add(-1)
	for {
		m := d.MaxInflight.Load()
		if n <= m || d.MaxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(d.Delay)
	d.mu.Lock()
	defer d.mu.Unlock()
	key := op + " " + addr.String()
	d.Calls = append(d.Calls, key)
	return d.FailOn[key]
}

// Create records the object with computed attributes set to placeholders
// derived from its address.
func (d *Driver) Create(_ context.Context, addr resource.Addr, desired cty.Value) (cty.Value, error) {
	if err := d.call("create", addr); err != nil {
		return cty.NilVal, err
	}
	v := fillComputed(addr, desired)
	d.mu.Lock()
	d.Objects[addr] = v
	d.mu.Unlock()
	return v, nil
}

// Update records the new value.
func (d *Driver) Update(_ context.Context, addr resource.Addr, _, desired cty.Value) (cty.Value, error) {
	if err := d.call("update", addr); err != nil {
		return cty.NilVal, err
	}
	d.mu.Lock()
	d.Objects[addr] = desired
	d.mu.Unlock()
	return desired, nil
}

// Delete forgets the object.
func (d *Driver) Delete(_ context.Context, addr resource.Addr, _ cty.Value) error {
	if err := d.call("delete", addr); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.Objects, addr)
	d.mu.Unlock()
	return nil
}

// Observe reports Health[addr], or Missing for objects it does not hold.
func (d *Driver) Observe(_ context.Context, addr resource.Addr, _ cty.Value) (resource.Observation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, ok := d.Health[addr]; ok {
		return o, nil
	}
	if _, ok := d.Objects[addr]; !ok {
		return resource.Observation{Health: resource.Missing, Reason: "gone"}, nil
	}
	return resource.Observation{}, nil
}

func fillComputed(addr resource.Addr, v cty.Value) cty.Value {
	set := map[string]cty.Value{}
	for name, a := range resource.SchemaOf(addr.Kind).Attributes {
		if !a.Computed || !v.GetAttr(name).IsNull() {
			continue
		}
		if addr.Kind == resource.KindImage && name == "repo_digest" && v.GetAttr("pull").IsNull() {
			continue // as the image driver: only a pulled image has one
		}
		if addr.Kind == resource.KindImage && name == "build_key" && v.GetAttr("build").IsNull() {
			continue // and only a built image a build key
		}
		switch {
		case a.Type == cty.String:
			set[name] = cty.StringVal(fmt.Sprintf("%s-%s", addr, name))
		case a.Type.IsMapType():
			set[name] = cty.MapValEmpty(cty.String)
		}
	}
	return resource.WithAttrs(v, set)
}

// Instance builds a configured instance without HCL: attrs computes the
// configured attributes from the dependencies' values; everything else is
// null (computed attributes unknown), as the DSL would give it.
func Instance(addr resource.Addr, deps []resource.Addr, attrs func(deps map[resource.Addr]cty.Value) map[string]cty.Value) *resource.Instance {
	return &resource.Instance{
		Addr:      addr,
		Deps:      deps,
		DeclRange: hcl.Range{Filename: "fake.hcl", Start: hcl.InitialPos, End: hcl.InitialPos},
		Eval: func(d map[resource.Addr]cty.Value) (cty.Value, hcl.Diagnostics) {
			return Object(addr.Kind, attrs(d)), nil
		},
	}
}

// Object makes a value of the kind's type from the given attributes: the
// rest null, computed ones unknown, list blocks empty.
func Object(kind resource.Kind, attrs map[string]cty.Value) cty.Value {
	schema := resource.SchemaOf(kind)
	out := map[string]cty.Value{}
	for name, a := range schema.Attributes {
		switch {
		case attrs[name] != cty.NilVal:
			out[name] = attrs[name]
		case a.Computed:
			out[name] = cty.UnknownVal(a.Type)
		case a.Default != cty.NilVal:
			out[name] = a.Default
		default:
			out[name] = cty.NullVal(a.Type)
		}
	}
	for name, b := range schema.Blocks {
		t := b.Schema.ImpliedType()
		switch {
		case attrs[name] != cty.NilVal:
			out[name] = attrs[name]
		case b.Nesting == resource.NestingList:
			out[name] = cty.ListValEmpty(t)
		default:
			out[name] = cty.NullVal(t)
		}
	}
	return cty.ObjectVal(out)
}

// Attr returns an attribute of a dependency's value, or unknown if the
// dependency is not there yet.
func Attr(deps map[resource.Addr]cty.Value, addr resource.Addr, name string) cty.Value {
	v, ok := deps[addr]
	if !ok || !v.IsKnown() {
		return cty.UnknownVal(resource.SchemaOf(addr.Kind).Attributes[name].Type)
	}
	return v.GetAttr(name)
}

// Preparing is a Driver that is also a driver.Preparer: Prepare records
// "prepare ADDR" and fails as FailOn says.
type Preparing struct{ *Driver }

var _ driver.Preparer = Preparing{}

// Prepare records the call.
func (p Preparing) Prepare(_ context.Context, addr resource.Addr, _ cty.Value) error {
	return p.call("prepare", addr)
}
