// Package network implements the network kind with CNI: a bridge network is
// a CNI configuration list (bridge + host-local IPAM, portmap, firewall)
// written under Config.StateDir, plus the Linux bridge itself, created
// eagerly so that it exists, and its deletion can be observed, before any
// container joins. Host and none networks are records only: they tell the
// container driver which namespace to build (Mode).
//
// Containers join through driver.Networks: Attach runs CNI ADD on the
// container's network namespace with libcni, Detach runs CNI DEL from the
// configuration libcni cached at ADD time, so port mappings and masquerade
// rules are removed even after an agent restart or once the network's
// configuration has changed.
//
// The agent wires it in as the network kind's driver and as the
// driver.Networks of the container driver; nothing else imports it.
package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// Config places a host's networks.
type Config struct {
	// StateDir holds the CNI configuration lists (conf/), the network
	// records (networks/), host-local's address reservations (ipam/) and
	// libcni's attachment cache (cache/). It must survive an agent restart,
	// or Detach cannot remove the port mappings of running containers.
	StateDir string
	// PluginDirs are searched, in order, for the CNI plugins bridge,
	// host-local, portmap and firewall (scripts/build-cni.sh builds them).
	PluginDirs []string
	// Pool is the IPv4 range default subnets come from, one /24 per network.
	// It must not overlap Docker's 172.17.0.0/16 nor podman's 10.88.0.0/16,
	// which may run on the same host.
	Pool string
}

// DefaultConfig is the layout of a host agent.
func DefaultConfig() Config {
	return Config{
		StateDir:   "/var/lib/berth/network",
		PluginDirs: []string{"/usr/lib/berth/cni", "/opt/cni/bin", "/usr/lib/cni"},
		Pool:       "10.213.0.0/16",
	}
}

// Driver manages networks under Config.StateDir.
type Driver struct {
	cfg  Config
	pool netip.Prefix
	cni  *libcni.CNIConfig
	// netfilter is the backend portmap and the bridge's masquerading use:
	// "iptables" where the iptables command works, else "nftables".
	netfilter string
	// routes lists the host's IPv4 routes; a seam so that subnet choice is
	// tested without the kernel.
	routes func() ([]hostRoute, error)

	mu sync.Mutex
	// previewed holds the subnets Preview chose for networks not created
	// yet, by network name, so that two new networks planned together are
	// not both given the first free /24.
	previewed map[string]netip.Prefix
}

var (
	_ driver.Driver    = (*Driver)(nil)
	_ driver.Previewer = (*Driver)(nil)
	_ driver.Networks  = (*Driver)(nil)
)

// Modes of a network, as Mode reports them.
const (
	modeBridge = "bridge"
	modeHost   = "host"
	modeNone   = "none"
)

// Subnets berth must leave to its peers on the same host.
var foreignDefaults = map[string]netip.Prefix{
	"Docker's default bridge":  netip.MustParsePrefix("172.17.0.0/16"),
	"podman's default network": netip.MustParsePrefix("10.88.0.0/16"),
}

// New checks cfg and prepares StateDir.
func New(cfg Config) (*Driver, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("network: Config.StateDir is empty")
	}
	if len(cfg.PluginDirs) == 0 {
		return nil, errors.New("network: Config.PluginDirs is empty")
	}
	pool, err := netip.ParsePrefix(cfg.Pool)
	if err != nil || !pool.Addr().Is4() || pool.Masked() != pool || pool.Bits() > 24 {
		return nil, fmt.Errorf("network: pool %q is not an IPv4 subnet of /24 or larger", cfg.Pool)
	}
	for what, p := range foreignDefaults {
		if pool.Overlaps(p) {
			return nil, fmt.Errorf("network: pool %s overlaps %s (%s); choose another pool", pool, what, p)
		}
	}
	for _, dir := range []string{confDir, recordDir, ipamDir, cacheDir} {
		if err := os.MkdirAll(filepath.Join(cfg.StateDir, dir), 0o700); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	return &Driver{
		cfg:       cfg,
		pool:      pool,
		cni:       libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(cfg.StateDir, cacheDir), nil),
		netfilter: detectNetfilter(),
		routes:    netlinkRoutes,
		previewed: map[string]netip.Prefix{},
	}, nil
}

// BridgeName is the Linux bridge of a network: a hash of the name, since
// interface names are limited to 15 bytes and network names are not.
func BridgeName(network string) string {
	sum := sha256.Sum256([]byte(network))
	return "bn-" + hex.EncodeToString(sum[:4])
}

func decode(addr resource.Addr, v cty.Value) (resource.NetworkSpec, error) {
	var spec resource.NetworkSpec
	if err := resource.Decode(v, &spec); err != nil {
		return spec, fmt.Errorf("%s: %w", addr, err)
	}
	if !validName(spec.Name) {
		return spec, fmt.Errorf("%s: invalid network name %q", addr, spec.Name)
	}
	if spec.Driver == "" {
		spec.Driver = modeBridge
	}
	return spec, nil
}

// validName keeps names inside StateDir and acceptable to libcni (which
// refuses names it cannot use in file names); the schema is stricter.
func validName(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "-") && !strings.ContainsAny(name, "/\\ ")
}

// Preview chooses a new bridge network's subnet and gateway now, the same
// choice Create makes on the same host, so the plan shows them and an
// overlap with a route or another network, or a name another owner's
// network holds, fails the plan rather than the apply. An existing network
// keeps what it was given.
func (d *Driver) Preview(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error) {
	if !desired.IsKnown() || desired.IsNull() {
		return desired, nil
	}
	name, drv := desired.GetAttr("name"), desired.GetAttr("driver")
	if !name.IsKnown() || name.IsNull() || !drv.IsKnown() {
		return desired, nil
	}
	if rec, err := d.readRecord(name.AsString()); err == nil {
		pn := cty.NullVal(cty.String)
		if !prior.IsNull() {
			pn = prior.GetAttr("name")
		}
		if other := resource.ForeignOwner(ctx, rec.Owner, pn.RawEquals(name)); other != "" {
			return cty.NilVal, alreadyExists(rec.Name, other)
		}
	} else if !errors.Is(err, resource.ErrNotFound) {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	mode := modeBridge
	if !drv.IsNull() {
		mode = drv.AsString()
	}
	subnet, gateway := desired.GetAttr("subnet"), desired.GetAttr("gateway")
	if mode != modeBridge {
		if isSet(subnet) || isSet(gateway) {
			return cty.NilVal, fmt.Errorf("%s: subnet and gateway apply only to bridge networks, and this one is %q", addr, mode)
		}
		return resource.WithAttrs(desired, nullComputed), nil
	}
	bridge := cty.StringVal(BridgeName(name.AsString()))
	if !prior.IsNull() && isSet(prior.GetAttr("subnet")) && (!subnet.IsKnown() ||
		subnet.RawEquals(prior.GetAttr("subnet")) && (!gateway.IsKnown() || gateway.RawEquals(prior.GetAttr("gateway")))) {
		// An existing network keeps its subnet, checked when it was made: a
		// route added since must not stop every later plan. A subnet known
		// only during the apply is checked by Create.
		return resource.WithAttrs(desired, map[string]cty.Value{"bridge": bridge}), nil
	}
	want := netSpecOf(name.AsString(), subnet, gateway)
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.resolve(want)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	d.previewed[n.name] = n.subnet
	return resource.WithAttrs(desired, n.computed()), nil
}

// nullComputed are the computed attributes of a host or none network.
var nullComputed = map[string]cty.Value{
	"subnet":  cty.NullVal(cty.String),
	"gateway": cty.NullVal(cty.String),
	"bridge":  cty.NullVal(cty.String),
}

func isSet(v cty.Value) bool { return v.IsKnown() && !v.IsNull() && v.AsString() != "" }

// netSpecOf reads the user's subnet and gateway; unknown or null leaves
// them to be chosen.
func netSpecOf(name string, subnet, gateway cty.Value) wanted {
	w := wanted{name: name}
	if isSet(subnet) {
		w.subnet = subnet.AsString()
	}
	if isSet(gateway) {
		w.gateway = gateway.AsString()
	}
	return w
}

// Create writes the network's record and, for a bridge network, its CNI
// configuration list and the bridge with its gateway address. Called again
// for a network of the same owner it converges it (a bridge deleted by
// hand is made again) as long as its subnet, gateway and internal flag are
// as desired: changing them would re-address containers attached to it.
// Another owner's network is refused.
func (d *Driver) Create(ctx context.Context, addr resource.Addr, desired cty.Value) (cty.Value, error) {
	spec, err := decode(addr, desired)
	if err != nil {
		return cty.NilVal, err
	}
	unlock, err := d.lock()
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	defer unlock()

	owner := resource.RecordedOwner(ctx)
	want := wanted{name: spec.Name, subnet: spec.Subnet, gateway: spec.Gateway}
	if rec, err := d.readRecord(spec.Name); err == nil {
		if other := resource.ForeignOwner(ctx, rec.Owner, true); other != "" {
			return cty.NilVal, fmt.Errorf("%s: %w", addr, alreadyExists(rec.Name, other))
		}
		if err := rec.differs(spec); err != nil {
			return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
		}
		want.subnet, want.gateway = rec.Subnet, rec.Gateway
	} else if !errors.Is(err, resource.ErrNotFound) {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}

	if spec.Driver != modeBridge {
		if spec.Subnet != "" || spec.Gateway != "" {
			return cty.NilVal, fmt.Errorf("%s: subnet and gateway apply only to bridge networks, and this one is %q", addr, spec.Driver)
		}
		if err := d.writeRecord(record{Name: spec.Name, Driver: spec.Driver, Labels: spec.Labels, Owner: owner}); err != nil {
			return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
		}
		return resource.WithAttrs(desired, nullComputed), nil
	}

	d.mu.Lock()
	n, err := d.resolve(want)
	d.mu.Unlock()
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	n.internal = spec.Internal
	if err := d.createBridgeNetwork(n, spec.Labels, owner); err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	d.mu.Lock()
	delete(d.previewed, n.name)
	d.mu.Unlock()
	return resource.WithAttrs(desired, n.computed()), nil
}

// differs refuses to make the network spec describes out of the existing
// one when they differ in what a create cannot change under attached
// containers: its mode, subnet, gateway and internal flag.
func (rec record) differs(spec resource.NetworkSpec) error {
	var what []string
	if rec.Driver != spec.Driver {
		what = append(what, fmt.Sprintf("driver %q, not %q", rec.Driver, spec.Driver))
	}
	if spec.Subnet != "" && spec.Subnet != rec.Subnet {
		what = append(what, fmt.Sprintf("subnet %s, not %s", rec.Subnet, spec.Subnet))
	}
	if spec.Gateway != "" && spec.Gateway != rec.Gateway {
		what = append(what, fmt.Sprintf("gateway %s, not %s", rec.Gateway, spec.Gateway))
	}
	if spec.Internal != rec.Internal {
		what = append(what, fmt.Sprintf("internal = %t, not %t", rec.Internal, spec.Internal))
	}
	if len(what) == 0 {
		return nil
	}
	return resource.Errorf(resource.ErrAlreadyExists, "network %q already exists on this host with %s; configure it as it is, or destroy it first", rec.Name, strings.Join(what, ", "))
}

// createBridgeNetwork writes the conflist and the record and makes the
// bridge; on failure it removes what it made and had not existed.
func (d *Driver) createBridgeNetwork(n *bridgeNet, labels map[string]string, owner string) (err error) {
	conf, err := n.conflist(d.ipamDir(), d.netfilter)
	if err != nil {
		return err
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if _, statErr := os.Stat(d.confPath(n.name)); statErr != nil {
		undo = append(undo, func() { _ = os.Remove(d.confPath(n.name)) })
	}
	if err := atomicfile.WriteFile(d.confPath(n.name), conf, 0o644); err != nil {
		return fmt.Errorf("write CNI configuration: %w", err)
	}
	if _, statErr := os.Stat(d.recordPath(n.name)); statErr != nil {
		undo = append(undo, func() { _ = os.Remove(d.recordPath(n.name)) })
	}
	rec := record{
		Name: n.name, Driver: modeBridge, Labels: labels, Internal: n.internal,
		Subnet: n.subnet.String(), Gateway: n.gateway.String(), Bridge: n.bridge, Owner: owner,
	}
	if err := d.writeRecord(rec); err != nil {
		return err
	}
	made, err := ensureBridge(n.bridge, netip.PrefixFrom(n.gateway, n.subnet.Bits()))
	if made {
		undo = append(undo, func() { _ = deleteBridge(n.bridge) })
	}
	return err
}

// Update records new labels; they are the only attribute changed in place.
func (d *Driver) Update(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error) {
	spec, err := decode(addr, desired)
	if err != nil {
		return cty.NilVal, err
	}
	unlock, err := d.lock()
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	defer unlock()
	rec, err := d.readRecord(spec.Name)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	if other := resource.ForeignOwner(ctx, rec.Owner, true); other != "" {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, alreadyExists(rec.Name, other))
	}
	rec.Labels = spec.Labels
	// The network is the caller's: one made before owners were recorded
	// stops being ownerless once touched.
	if o := resource.RecordedOwner(ctx); o != "" {
		rec.Owner = o
	}
	if err := d.writeRecord(rec); err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	return resource.WithAttrs(desired, map[string]cty.Value{
		"subnet":  prior.GetAttr("subnet"),
		"gateway": prior.GetAttr("gateway"),
		"bridge":  prior.GetAttr("bridge"),
	}), nil
}

// Delete removes the bridge, the configuration list, the address
// reservations and the record. It refuses while containers are attached:
// deleting the bridge under them would cut them off silently. A network
// another owner now holds under this name is not the caller's any more: it
// is left alone and the delete succeeds. One whose record cannot be read
// is refused: berth cannot tell whose it is.
func (d *Driver) Delete(ctx context.Context, addr resource.Addr, prior cty.Value) error {
	spec, err := decode(addr, prior)
	if err != nil {
		return err
	}
	unlock, err := d.lock()
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	defer unlock()
	if rec, err := d.readRecord(spec.Name); err == nil {
		if resource.ForeignOwner(ctx, rec.Owner, true) != "" {
			return nil
		}
	} else if !errors.Is(err, resource.ErrNotFound) {
		return fmt.Errorf("%s: %w", addr, err)
	}
	attached, err := d.attachedTo(spec.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	if len(attached) > 0 {
		return resource.Errorf(resource.ErrConflict, "%s: network %s still has %d container(s) attached (%s); remove them first",
			addr, spec.Name, len(attached), strings.Join(attached, ", "))
	}
	bridge := spec.Bridge
	if bridge == "" {
		bridge = BridgeName(spec.Name)
	}
	if spec.Driver == modeBridge {
		if err := deleteBridge(bridge); err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	for _, p := range []string{d.confPath(spec.Name), d.recordPath(spec.Name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(d.ipamDir(), spec.Name)); err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	d.mu.Lock()
	delete(d.previewed, spec.Name)
	d.mu.Unlock()
	return nil
}

// Observe reports a network whose record, configuration list or bridge is
// gone, or that another owner now holds, as Missing, so the next apply
// makes it again (or says whose it is).
func (d *Driver) Observe(ctx context.Context, addr resource.Addr, prior cty.Value) (resource.Observation, error) {
	spec, err := decode(addr, prior)
	if err != nil {
		return resource.Observation{}, err
	}
	if rec, err := d.readRecord(spec.Name); errors.Is(err, resource.ErrNotFound) {
		return resource.Observation{Health: resource.Missing, Reason: "network " + spec.Name + " is not recorded on this host"}, nil
	} else if err != nil {
		return resource.Observation{}, fmt.Errorf("%s: %w", addr, err)
	} else if other := resource.ForeignOwner(ctx, rec.Owner, true); other != "" {
		return resource.Observation{Health: resource.Missing, Reason: "network " + spec.Name + " now belongs to " + other}, nil
	}
	if spec.Driver != modeBridge {
		return resource.Observation{Health: resource.Healthy}, nil
	}
	if _, err := os.Stat(d.confPath(spec.Name)); errors.Is(err, os.ErrNotExist) {
		return resource.Observation{Health: resource.Missing, Reason: "CNI configuration " + d.confPath(spec.Name) + " was removed"}, nil
	} else if err != nil {
		return resource.Observation{}, fmt.Errorf("%s: %w", addr, err)
	}
	bridge := spec.Bridge
	if bridge == "" {
		bridge = BridgeName(spec.Name)
	}
	ok, err := bridgeExists(bridge)
	if err != nil {
		return resource.Observation{}, fmt.Errorf("%s: %w", addr, err)
	}
	if !ok {
		return resource.Observation{Health: resource.Missing, Reason: "bridge " + bridge + " was deleted outside berth"}, nil
	}
	return resource.Observation{Health: resource.Healthy}, nil
}

func alreadyExists(name, owner string) error {
	return resource.Errorf(resource.ErrAlreadyExists, "network %q already exists on this host and belongs to %s; choose another name, or destroy it there", name, owner)
}

// Mode tells the container driver how to build a container's namespace.
func (d *Driver) Mode(_ context.Context, network string) (string, error) {
	rec, err := d.readRecord(network)
	if err != nil {
		return "", err // it names the network
	}
	return rec.Driver, nil
}
