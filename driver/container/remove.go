package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/seed-e88ffcd2/berth/resource"
)

// Remove deletes the container named name and everything it has on the
// host, as Delete does for a declared one, whoever owns it: berth rm. A
// running container is refused with ErrConflict unless force, which kills
// it first (docker rm -f). It returns what the container was. A project
// that declares it sees it missing in its next plan.
func (d *Driver) Remove(ctx context.Context, name string, force bool) (Info, error) {
	m, err := d.byName(name)
	if err != nil {
		return Info{}, err
	}
	unlock, err := d.lockName(m.ID)
	if err != nil {
		return Info{}, err
	}
	defer unlock()
	// Read again under the lock: an apply may have replaced it meanwhile.
	if m, err = readMeta(d.dir(m.ID)); errors.Is(err, fs.ErrNotExist) {
		return Info{}, resource.Errorf(resource.ErrNotFound, "no container %q on this host (berth ps -a lists them)", name)
	} else if err != nil {
		return Info{}, unreadableOwner(d.dir(name), name, err)
	}
	in := d.info(m)
	if c, err := libcontainer.Load(d.stateRoot(), m.ID); err == nil && running(c) && !force {
		return in, resource.Errorf(resource.ErrConflict, "container %s is running: stop it first (berth stop %s), or remove it anyway with berth rm -f", m.Name, m.Name)
	}
	if err := d.cleanup(ctx, m.ID); err != nil {
		return in, fmt.Errorf("remove container %s: %w", m.Name, err)
	}
	return in, nil
}
