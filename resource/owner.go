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

// RunProject is the project in the owner of a one-off container (berth
// run): Owner{Project: RunProject, Addr: container.NAME["NONCE"]}, the
// nonce new for each run. Project names start with a letter or digit, so
// no configuration's project is this one and no apply can adopt, change
// or delete such a container; and two runs of one name never take each
// other's container for their own.
const RunProject = "(run)"

// AutoRemoveLabel set to "true" on a container asks for it to be deleted
// once its init exits: berth run --rm marks its containers so, and the
// agent's supervisor removes those started with --rm -d, whose berth run
// returned at once.
const AutoRemoveLabel = "berth.rm"

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

// Unrecorded is what ForeignOwner reports for an object that records no
// owner.
const Unrecorded = "no recorded owner (made by an older berth, or by hand)"

// RecordedOwner is the owner to record with an object made for the caller
// in ctx, "" when no caller is known.
func RecordedOwner(ctx context.Context) string {
	if o, ok := OwnerOf(ctx); ok {
		return o.String()
	}
	return ""
}

// ForeignOwner says who else owns an object recorded with owner, or ""
// when the caller in ctx may use it: it is the caller's; no caller is known
// (a direct driver call); it belongs to an instance this plan deletes
// first (WithReleased: a block renamed within the project); or no owner is
// recorded and legacy says the caller may take such objects.
func ForeignOwner(ctx context.Context, owner string, legacy bool) string {
	o, ok := OwnerOf(ctx)
	switch {
	case !ok || owner == o.String() || owner == "" && legacy:
		return ""
	case owner == "":
		return Unrecorded
	}
	if released, _ := ctx.Value(releasedKey{}).(map[string]bool); released[owner] {
		return ""
	}
	return owner
}

type releasedKey struct{}

// WithReleased returns a context in which objects of the given owners are
// not foreign: the plan deletes them before it creates anything, so their
// host-wide names are free for the caller by the time it needs them.
func WithReleased(ctx context.Context, owners []Owner) context.Context {
	if len(owners) == 0 {
		return ctx
	}
	set := make(map[string]bool, len(owners))
	for _, o := range owners {
		set[o.String()] = true
	}
	return context.WithValue(ctx, releasedKey{}, set)
}
