package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
	"github.com/seed-e88ffcd2/berth/resource"
	"golang.org/x/sys/unix"
)

// The layout of Config.StateDir.
const (
	confDir   = "conf"     // NAME.conflist, as libcni reads them
	recordDir = "networks" // NAME.json, every network including host and none
	ipamDir   = "ipam"     // host-local's dataDir: NAME/ADDRESS files
	cacheDir  = "cache"    // libcni's cache of each attachment
	lockFile  = "lock"
)

// record is what the driver keeps of a network. It is the source of Mode
// and of the subnets other networks must avoid.
type record struct {
	Name     string            `json:"name"`
	Driver   string            `json:"driver"`
	Subnet   string            `json:"subnet,omitempty"`
	Gateway  string            `json:"gateway,omitempty"`
	Bridge   string            `json:"bridge,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Owner is who made the network (resource.Owner); empty for a network
	// an older berth made.
	Owner string `json:"owner,omitempty"`
}

func (d *Driver) confPath(name string) string {
	return filepath.Join(d.cfg.StateDir, confDir, name+".conflist")
}

func (d *Driver) recordPath(name string) string {
	return filepath.Join(d.cfg.StateDir, recordDir, name+".json")
}

func (d *Driver) ipamDir() string { return filepath.Join(d.cfg.StateDir, ipamDir) }

// readRecord reads one network's record; an unknown network wraps
// resource.ErrNotFound.
func (d *Driver) readRecord(name string) (record, error) {
	var rec record
	if !validName(name) {
		return rec, fmt.Errorf("network %q: %w", name, resource.ErrNotFound)
	}
	path := d.recordPath(name)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, fmt.Errorf("network %s: %w", name, resource.ErrNotFound)
	}
	if err == nil {
		err = json.Unmarshal(data, &rec)
	} else if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		err = pe.Err
	}
	if err != nil {
		return rec, resource.Errorf(resource.ErrConflict, "network %q: its record %s cannot be read (%v), so berth cannot tell whose network it is and leaves it alone; inspect that file, and repair it or remove the network by hand",
			name, path, err)
	}
	return rec, nil
}

// readRecords reads every network's record, in name order.
func (d *Driver) readRecords() ([]record, error) {
	entries, err := os.ReadDir(filepath.Join(d.cfg.StateDir, recordDir))
	if err != nil {
		return nil, err
	}
	var recs []record
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !validName(name) {
			continue
		}
		rec, err := d.readRecord(name)
		if errors.Is(err, resource.ErrNotFound) {
			continue // deleted meanwhile
		} else if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

func (d *Driver) writeRecord(rec record) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(d.recordPath(rec.Name), data, 0o644); err != nil {
		return fmt.Errorf("write network record: %w", err)
	}
	return nil
}

// attachedTo lists the containers libcni's cache holds as attached to the
// network, each as ID/IFNAME.
func (d *Driver) attachedTo(network string) ([]string, error) {
	all, err := d.cni.GetCachedAttachments("")
	if err != nil {
		return nil, fmt.Errorf("read the CNI cache: %w", err)
	}
	var ids []string
	for _, a := range all {
		if a.Network == network {
			ids = append(ids, a.ContainerID+"/"+a.IfName)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// lock serialises, across processes sharing StateDir, the changes that
// read before they write: choosing a subnet, checking a host port is free
// before mapping it, refusing to delete a network in use.
func (d *Driver) lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(d.cfg.StateDir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock network state: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock network state: %w", err)
	}
	// Closing the file releases the lock.
	return func() { f.Close() }, nil
}
