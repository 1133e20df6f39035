// Package driver defines what berth asks of the code that changes a host:
// one Driver per kind, declarative and idempotent. Its subpackages implement
// it (driver/container with libcontainer, driver/network with CNI,
// driver/image with an OCI store, driver/volume on the local disk).
//
// Drivers import resource and nothing of plan, apply or state: they are
// given desired values and return what exists.
package driver

import (
	"context"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// Driver converges one kind of object. Values are objects of the kind's
// schema (resource.SchemaOf); those passed to Create and Update are wholly
// known. Each call is idempotent: called again with the same input it
// changes nothing and returns the same result.
type Driver interface {
	// Create makes the object and returns desired with its computed
	// attributes filled in. If it fails it removes what it made, so a
	// failed create leaves nothing to record.
	Create(ctx context.Context, addr resource.Addr, desired cty.Value) (cty.Value, error)
	// Update changes in place the attributes the schema marks InPlace.
	Update(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error)
	// Delete removes the object; deleting what is already gone succeeds.
	Delete(ctx context.Context, addr resource.Addr, prior cty.Value) error
	// Observe looks at a recorded object on the host.
	Observe(ctx context.Context, addr resource.Addr, prior cty.Value) (resource.Observation, error)
}

// Previewer is an optional capability: at plan time it fills in computed
// attributes that can already be known (an image's digest, a network's
// subnet) and checks the desired value against the host (a subnet that
// overlaps a route, a host port in use). prior is null for a new object.
// The returned value keeps unknown what cannot be known yet.
type Previewer interface {
	Preview(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error)
}

// Preparer is an optional capability: it fetches or builds what Create
// will need (an image's layers), without making the object, so that an
// apply that replaces something learns that the new one cannot be had
// before it deletes the old one. Create must still work without it.
type Preparer interface {
	Prepare(ctx context.Context, addr resource.Addr, desired cty.Value) error
}

// Set maps each kind to its driver.
type Set map[resource.Kind]Driver
