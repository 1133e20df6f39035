package agent

import (
	"context"
	"fmt"

	"github.com/seed-e88ffcd2/berth/resource"
)

// recordedContainers lists the containers the state store records, by
// name (their id), with their owner (PROJECT/ADDRESS): what the
// supervisor compares with the host to report containers removed
// outside berth (supervise.Config.Recorded).
func (h *Host) recordedContainers(ctx context.Context) (map[string]string, error) {
	projects, err := h.Store.Projects()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range projects {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		snap, err := h.Store.Snapshot(p)
		if err != nil {
			return nil, fmt.Errorf("project %s: %w", p, err)
		}
		for addr, obj := range snap.Objects {
			if addr.Kind != resource.KindContainer {
				continue
			}
			if id := containerID(obj); id != "" {
				out[id] = resource.Owner{Project: p, Addr: addr}.String()
			}
		}
	}
	return out, nil
}

// containerID is the runtime id a container object records, "" when it
// records none.
func containerID(obj *resource.Object) string {
	v := obj.Value
	if !v.IsKnown() || v.IsNull() || !v.Type().IsObjectType() {
		return ""
	}
	for _, attr := range []string{"id", "name"} {
		if !v.Type().HasAttribute(attr) {
			continue
		}
		if a := v.GetAttr(attr); a.IsKnown() && !a.IsNull() && a.AsString() != "" {
			return a.AsString()
		}
	}
	return ""
}
