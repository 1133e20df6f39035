package resource

import "context"

// Owner is who a host object belongs to: one instance of one project.
// Host-wide names (containers, networks, volumes, image names) can be
// claimed by any project on the host, so drivers record the owner with
// each object they make and refuse to take over one another owner made.
type Owner struct {
	Project string
	Addr    Addr
}

// String renders the owner as PROJECT/ADDRESS, the form drivers record.
func (o Owner) String() string { return o.Project + "/" + o.Addr.String() }

type ownerKey struct{}

// WithOwner returns a context that tells the driver called with it whose
// object it is working on. The planner sets it for Preview and Observe, the
// applier for Create, Update and Delete.
func WithOwner(ctx context.Context, o Owner) context.Context {
	return context.WithValue(ctx, ownerKey{}, o)
}

// OwnerOf returns the owner set by WithOwner.
func OwnerOf(ctx context.Context) (Owner, bool) {
	o, ok := ctx.Value(ownerKey{}).(Owner)
	return o, ok
}
