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
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// Config places the volumes on the host.
type Config struct {
	// Root holds one directory per volume, named after the volume, and a
	// ".berth" directory with their metadata. Volume names start with a
	// letter or digit, so ".berth" never collides with one.
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
	if err := os.MkdirAll(filepath.Join(cfg.Root, metaDir), 0o700); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	return &Driver{cfg: cfg}, nil
}

const metaDir = ".berth"

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

// checkOwner refuses a volume that exists and is another owner's. See
// foreignOwner for legacy.
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
func (d *Driver) Create(ctx context.Context, addr resource.Addr, desired cty.Value) (cty.Value, error) {
	spec, err := decode(addr, desired)
	if err != nil {
		return cty.NilVal, err
	}
	if err := d.checkOwner(ctx, spec.Name, true); err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	dir := d.dir(spec.Name)
	_, statErr := os.Stat(dir)
	existed := statErr == nil
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return cty.NilVal, fmt.Errorf("%s: create volume: %w", addr, err)
	}
	if err := d.writeMeta(meta{Name: spec.Name, Labels: spec.Labels, Owner: resource.RecordedOwner(ctx)}); err != nil {
		if !existed {
			_ = os.Remove(dir)
		}
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	return resource.WithAttrs(desired, map[string]cty.Value{"path": cty.StringVal(dir)}), nil
}

// Update records new labels; the data is untouched.
func (d *Driver) Update(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error) {
	spec, err := decode(addr, desired)
	if err != nil {
		return cty.NilVal, err
	}
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
// and the delete succeeds.
func (d *Driver) Delete(ctx context.Context, addr resource.Addr, prior cty.Value) error {
	spec, err := decode(addr, prior)
	if err != nil {
		return err
	}
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
// recorded owner.
func (d *Driver) owner(name string) (owner string, exists bool, err error) {
	data, err := os.ReadFile(d.metaPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		_, err := os.Stat(d.dir(name))
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		return "", err == nil, err
	} else if err != nil {
		return "", false, err
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil {
		return "", false, fmt.Errorf("volume %s: read metadata: %w", name, err)
	}
	return m.Owner, true, nil
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
