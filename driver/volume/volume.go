// Package volume implements the volume kind on the local disk: a volume is
// the directory Root/NAME, which containers bind-mount, plus a metadata file
// holding its labels and owner. The metadata lives outside the volume
// directory so it never shows up inside a container.
//
// The agent wires it in as the driver.Volumes the container driver uses to
// find volume directories; nothing else imports it.
package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
	"github.com/seed-e88ffcd2/berth/internal/filelock"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// Config places the volumes on the host.
type Config struct {
	// Root holds one directory per volume, named after the volume, and a
	// ".berth" directory with their metadata and, in ".berth/locks", a lock
	// file per volume name in use. Volume names start with a letter or
	// digit, so ".berth" never collides with one.
	Root string
}

// DefaultConfig is the layout of a host agent.
func DefaultConfig() Config {
	return Config{Root: "/var/lib/berth/volumes"}
}

// Driver manages volumes under Config.Root.
type Driver struct {
	cfg Config
}

var (
	_ driver.Driver    = (*Driver)(nil)
	_ driver.Previewer = (*Driver)(nil)
	_ driver.Volumes   = (*Driver)(nil)
)

// New prepares Root.
func New(cfg Config) (*Driver, error) {
	if cfg.Root == "" {
		return nil, errors.New("volume: Config.Root is empty")
	}
	if err := os.MkdirAll(filepath.Join(cfg.Root, metaDir, locksDir), 0o700); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	return &Driver{cfg: cfg}, nil
}

const (
	metaDir  = ".berth"
	locksDir = "locks" // under metaDir
)

// meta is what a volume records beside its data.
type meta struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Owner is who made the volume (resource.Owner); empty for a volume an
	// older berth made.
	Owner string `json:"owner,omitempty"`
}

func (d *Driver) dir(name string) string { return filepath.Join(d.cfg.Root, name) }

func (d *Driver) metaPath(name string) string {
	return filepath.Join(d.cfg.Root, metaDir, name+".json")
}

// validName keeps names inside Root and away from the metadata directory;
// the schema's own validation is stricter, this guards the filesystem.
func validName(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.ContainsRune(name, '/')
}

func decode(addr resource.Addr, v cty.Value) (resource.VolumeSpec, error) {
	var spec resource.VolumeSpec
	if err := resource.Decode(v, &spec); err != nil {
		return spec, fmt.Errorf("%s: %w", addr, err)
	}
	if !validName(spec.Name) {
		return spec, fmt.Errorf("%s: invalid volume name %q", addr, spec.Name)
	}
	return spec, nil
}

// Preview refuses, at plan time, a volume name another owner's volume
// holds.
func (d *Driver) Preview(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error) {
	if !desired.IsKnown() || desired.IsNull() {
		return desired, nil
	}
	name := desired.GetAttr("name")
	if !name.IsKnown() || name.IsNull() || !validName(name.AsString()) {
		return desired, nil
	}
	legacy := !prior.IsNull() && prior.GetAttr("name").RawEquals(name)
	if err := d.checkOwner(ctx, name.AsString(), legacy); err != nil {
		return cty.NilVal, err
	}
	return desired, nil
}

// checkOwner refuses a volume that exists and is another owner's; legacy
// is as resource.ForeignOwner takes it.
func (d *Driver) checkOwner(ctx context.Context, name string, legacy bool) error {
	owner, exists, err := d.owner(name)
	if err != nil || !exists {
		return err
	}
	if other := resource.ForeignOwner(ctx, owner, legacy); other != "" {
		return alreadyExists(name, other)
	}
	return nil
}

func alreadyExists(name, owner string) error {
	return resource.Errorf(resource.ErrAlreadyExists, "volume %q already exists on this host and belongs to %s; choose another name, or destroy it there", name, owner)
}

// Create makes the volume's directory, keeping what it already holds, so a
// volume recreated under the same name finds its data again: keeping data
// is the point of a volume. Another owner's volume is refused.
//
// The name is claimed atomically across processes: the check and the
// metadata naming the owner are done under the name's lock, and the
// metadata is written before the directory is made, so a crash in between
// leaves a claim the owner's next create completes, never a directory
// without an owner that the owner's next plan would refuse.
func (d *Driver) Create(ctx context.Context, addr resource.Addr, desired cty.Value) (cty.Value, error) {
	spec, err := decode(addr, desired)
	if err != nil {
		return cty.NilVal, err
	}
	unlock, err := d.lockName(spec.Name)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	defer unlock()
	if err := d.checkOwner(ctx, spec.Name, true); err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	_, statErr := os.Stat(d.metaPath(spec.Name))
	recorded := statErr == nil
	if err := d.writeMeta(meta{Name: spec.Name, Labels: spec.Labels, Owner: resource.RecordedOwner(ctx)}); err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	if testHookClaimed != nil {
		testHookClaimed()
	}
	dir := d.dir(spec.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		if !recorded {
			_ = os.Remove(d.metaPath(spec.Name))
		}
		return cty.NilVal, fmt.Errorf("%s: create volume: %w", addr, err)
	}
	return resource.WithAttrs(desired, map[string]cty.Value{"path": cty.StringVal(dir)}), nil
}

// testHookClaimed, when set, runs in Create between writing the metadata
// and making the directory: tests stop there to play a crash.
var testHookClaimed func()

// Update records new labels; the data is untouched.
func (d *Driver) Update(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error) {
	spec, err := decode(addr, desired)
	if err != nil {
		return cty.NilVal, err
	}
	unlock, err := d.lockName(spec.Name)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	defer unlock()
	if _, err := os.Stat(d.dir(spec.Name)); err != nil {
		return cty.NilVal, fmt.Errorf("%s: volume %s: %w", addr, spec.Name, resource.ErrNotFound)
	}
	owner, _, err := d.owner(spec.Name)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	if other := resource.ForeignOwner(ctx, owner, true); other != "" {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, alreadyExists(spec.Name, other))
	}
	if o := resource.RecordedOwner(ctx); o != "" {
		owner = o
	}
	if err := d.writeMeta(meta{Name: spec.Name, Labels: spec.Labels, Owner: owner}); err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	return resource.WithAttrs(desired, map[string]cty.Value{"path": prior.GetAttr("path")}), nil
}

// Delete removes the volume and its data. Whether data may be lost was
// decided by the plan, which asked the user. A volume another owner now
// holds under this name is not the caller's any more: it is left alone
// and the delete succeeds. One whose metadata cannot be read is refused:
// berth cannot tell whose it is.
func (d *Driver) Delete(ctx context.Context, addr resource.Addr, prior cty.Value) error {
	spec, err := decode(addr, prior)
	if err != nil {
		return err
	}
	unlock, err := d.lockName(spec.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	defer unlock()
	owner, exists, err := d.owner(spec.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	if exists && resource.ForeignOwner(ctx, owner, true) != "" {
		return nil
	}
	if err := os.RemoveAll(d.dir(spec.Name)); err != nil {
		return fmt.Errorf("%s: delete volume: %w", addr, err)
	}
	if err := os.Remove(d.metaPath(spec.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: delete volume metadata: %w", addr, err)
	}
	return nil
}

// Observe reports a volume whose directory is gone as Missing, and the size
// of what it holds so the planner can warn before deleting data. A volume
// another owner now holds is Missing too, and holds nothing of the
// caller's.
func (d *Driver) Observe(ctx context.Context, addr resource.Addr, prior cty.Value) (resource.Observation, error) {
	spec, err := decode(addr, prior)
	if err != nil {
		return resource.Observation{}, err
	}
	dir := d.dir(spec.Name)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return resource.Observation{Health: resource.Missing, Reason: "volume directory " + dir + " was removed"}, nil
	} else if err != nil {
		return resource.Observation{}, fmt.Errorf("%s: %w", addr, err)
	}
	owner, _, err := d.owner(spec.Name)
	if err != nil {
		return resource.Observation{}, fmt.Errorf("%s: %w", addr, err)
	}
	if other := resource.ForeignOwner(ctx, owner, true); other != "" {
		return resource.Observation{Health: resource.Missing, Reason: "volume " + spec.Name + " now belongs to " + other}, nil
	}
	size, err := dataBytes(dir)
	if err != nil {
		return resource.Observation{}, fmt.Errorf("%s: measure volume: %w", addr, err)
	}
	return resource.Observation{Health: resource.Healthy, DataBytes: size}, nil
}

// Path locates a volume's directory for the container driver.
func (d *Driver) Path(_ context.Context, name string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("volume %q: %w", name, resource.ErrNotFound)
	}
	dir := d.dir(name)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("volume %q: %w", name, resource.ErrNotFound)
	}
	return dir, nil
}

// writeMeta replaces the metadata file atomically.
func (d *Driver) writeMeta(m meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(d.metaPath(m.Name), data, 0o644); err != nil {
		return fmt.Errorf("write volume metadata: %w", err)
	}
	return nil
}

// owner reads who owns the volume name and whether it exists (its
// directory or its metadata). A directory without metadata has no
// recorded owner; metadata that cannot be read is an error that tells the
// user to look at it.
func (d *Driver) owner(name string) (owner string, exists bool, err error) {
	path := d.metaPath(name)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, err := os.Stat(d.dir(name))
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		return "", err == nil, err
	}
	var m meta
	if err == nil {
		err = json.Unmarshal(data, &m)
	} else if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		err = pe.Err
	}
	if err != nil {
		return "", false, resource.Errorf(resource.ErrConflict, "volume %q: its owner record %s cannot be read (%v), so berth cannot tell whose volume it is and leaves it and its data alone; inspect that file, and repair it or remove the volume by hand",
			name, path, err)
	}
	return m.Owner, true, nil
}

// lockName takes the host-wide lock on volume name, across processes:
// Create holds it from the owner check through writing the metadata,
// Update and Delete while they change or remove it, so two projects never
// both find the name free. The lock file goes when the name is released
// (neither the metadata nor the directory is left).
func (d *Driver) lockName(name string) (unlock func(), err error) {
	path := filepath.Join(d.cfg.Root, metaDir, locksDir, name+".lock")
	f, err := filelock.Lock(path)
	if err != nil {
		return nil, fmt.Errorf("lock volume name %s: %w", name, err)
	}
	return func() {
		_, metaErr := os.Lstat(d.metaPath(name))
		_, dirErr := os.Lstat(d.dir(name))
		if errors.Is(metaErr, fs.ErrNotExist) && errors.Is(dirErr, fs.ErrNotExist) {
			_ = os.Remove(path)
		}
		f.Close()
	}, nil
}

// dataBytes sums the sizes of the regular files under dir.
func dataBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			// Files vanish while a container runs; count what is there.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.Type().IsRegular() {
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}
