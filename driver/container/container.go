// Package container implements the container kind with runc's libcontainer:
// berth starts containers itself, without a daemon. A container is an
// overlay root filesystem mounted on the host, a libcontainer container
// whose init is the user's process, a network namespace joined to the
// networks the container asks for, and berth-managed /etc/hosts,
// /etc/hostname and /etc/resolv.conf through which containers on a shared
// network find each other by name.
//
// The process re-executes its own binary as each container's init, so the
// program's main must call Init before anything else, and so must the
// TestMain of any test binary that starts containers.
//
// The agent wires it in with the image, network and volume drivers; nothing
// else imports it.
package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	// Without nsenter the init never reports its PID ("can't get final
	// child's PID from pipe: EOF"); without devices the cgroup manager
	// refuses device rules.
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/internal/monitor"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"golang.org/x/sys/unix"
)

// Config places a host's containers.
type Config struct {
	// StateDir holds one directory per container that outlives reboots:
	// the overlay's upper and work directories and mountpoint, the logs,
	// the hosts, hostname and resolv.conf files and berth's metadata.
	StateDir string
	// RunDir holds what lives as long as the boot: libcontainer's state
	// (RunDir/containers) and the bind mounts that keep network
	// namespaces alive (RunDir/netns).
	RunDir string
	// CgroupParent is the absolute cgroup under which each container gets
	// CgroupParent/ID, in every hierarchy on cgroup v1.
	CgroupParent string
	// Monitor is the berth-monitor binary each container runs under.
	Monitor string
	// LogMaxSize and LogMaxFiles rotate each container's log: past
	// LogMaxSize bytes, keeping LogMaxFiles files.
	LogMaxSize  int64
	LogMaxFiles int
}

// DefaultConfig is the layout of a host agent.
func DefaultConfig() Config {
	return Config{
		StateDir:     "/var/lib/berth/containers",
		RunDir:       "/run/berth",
		CgroupParent: "/berth",
		LogMaxSize:   10 << 20,
		LogMaxFiles:  3,
	}
}

// Driver runs containers on this host.
type Driver struct {
	cfg      Config
	images   driver.Images
	networks driver.Networks
	volumes  driver.Volumes

	// hostsMu serialises rewriting hosts files within the process; a file
	// lock does it across processes.
	hostsMu sync.Mutex

	pids pidWatcher
}

var (
	_ driver.Driver    = (*Driver)(nil)
	_ driver.Previewer = (*Driver)(nil)
)

// New checks the configuration and creates the directories.
func New(cfg Config, images driver.Images, networks driver.Networks, volumes driver.Volumes) (*Driver, error) {
	if cfg.StateDir == "" || cfg.RunDir == "" {
		return nil, errors.New("container: Config.StateDir and Config.RunDir must be set")
	}
	if !strings.HasPrefix(cfg.CgroupParent, "/") {
		// A relative cgroup path lands under a different parent in each
		// v1 hierarchy.
		return nil, fmt.Errorf("container: Config.CgroupParent %q must be absolute", cfg.CgroupParent)
	}
	for _, dir := range []string{cfg.StateDir, filepath.Join(cfg.RunDir, "containers"), filepath.Join(cfg.RunDir, "netns")} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("container: %w", err)
		}
	}
	return &Driver{cfg: cfg, images: images, networks: networks, volumes: volumes}, nil
}

// Init turns this process into a container's init, or into the helper that
// starts a container under its monitor, when berth re-executed the binary
// for that, and returns at once otherwise. Call it first thing in main (and
// in TestMain). libcontainer starts its init as "ARGV0 init" with a sync
// pipe in the environment, the driver its helper as "ARGV0 __berth-start
// DIR" with _BERTH_START=1; checking both leaves user-facing subcommands
// of those names free.
func Init() {
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_LIBCONTAINER_INITPIPE") != "" {
		libcontainer.Init() // does not return
	}
	if len(os.Args) == 3 && os.Args[1] == startArg && os.Getenv("_BERTH_START") == "1" {
		startMain(os.Args[2]) // does not return
	}
}

// LogPath is the log of a container's output (internal/logfile), followed
// by its rotated files LogPath.1, LogPath.2, ….
func (d *Driver) LogPath(id string) string {
	return filepath.Join(d.dir(id), monitor.LogFile)
}

func (d *Driver) dir(id string) string        { return filepath.Join(d.cfg.StateDir, id) }
func (d *Driver) stateRoot() string           { return filepath.Join(d.cfg.RunDir, "containers") }
func (d *Driver) netnsPath(id string) string  { return filepath.Join(d.cfg.RunDir, "netns", id) }
func (d *Driver) cgroupPath(id string) string { return d.cfg.CgroupParent + "/" + id }

// containerID is the runtime id of the container spec describes: its name,
// which is unique on the host and already limited to characters
// libcontainer accepts. A missing name (the DSL normally fills it) falls
// back to the address. The id always follows the name, never an earlier
// id: a renamed container is a new container.
func containerID(addr resource.Addr, spec *resource.ContainerSpec) string {
	if spec.Name != "" {
		return spec.Name
	}
	id := addr.Name
	if addr.Key != resource.NoKey {
		id += "-" + strings.Trim(string(addr.Key), `"`)
	}
	return id
}

// recordedID is the runtime id of a container that exists: the id recorded
// with it, which differs from its name when an older berth kept the id
// across a rename.
func recordedID(addr resource.Addr, spec *resource.ContainerSpec) string {
	if spec.ID != "" {
		return spec.ID
	}
	return containerID(addr, spec)
}

func alreadyExists(name, owner string) error {
	return resource.Errorf(resource.ErrAlreadyExists, "container %q already exists on this host and belongs to %s; choose another name, or destroy it there", name, owner)
}

// specHash fingerprints the value a container is made from, without the
// attributes the driver computes, so that the same configuration hashes
// the same whether or not a plan filled them in. Create adopts an existing
// container only when it was made from the same value.
func specHash(v cty.Value) (string, error) {
	computed := map[string]cty.Value{}
	for name, a := range resource.ContainerSchema.Attributes {
		if a.Computed {
			computed[name] = cty.NullVal(a.Type)
		}
	}
	v = resource.WithAttrs(v, computed)
	data, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func decode(addr resource.Addr, v cty.Value) (*resource.ContainerSpec, error) {
	var spec resource.ContainerSpec
	if err := resource.Decode(v, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if spec.Name == "" {
		spec.Name = containerID(addr, &spec)
	}
	return &spec, nil
}

// Preview fills in the id, which follows from the name, and checks what
// can be checked before anything is built: the name must not be another
// owner's container, bind sources must exist and published host ports must
// be free.
func (d *Driver) Preview(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error) {
	if !desired.IsKnown() || desired.IsNull() {
		return desired, nil
	}
	var errs []error
	if mounts := desired.GetAttr("mount"); mounts.IsKnown() && !mounts.IsNull() {
		for it := mounts.ElementIterator(); it.Next(); {
			_, m := it.Element()
			if !m.IsKnown() || m.IsNull() {
				continue
			}
			b := m.GetAttr("bind")
			if !b.IsKnown() || b.IsNull() {
				continue
			}
			if _, err := os.Stat(b.AsString()); err != nil {
				errs = append(errs, fmt.Errorf("bind mount source %s does not exist: create it or correct the path", b.AsString()))
			}
		}
	}
	id := cty.UnknownVal(cty.String)
	if name := desired.GetAttr("name"); name.IsKnown() {
		spec := resource.ContainerSpec{}
		if !name.IsNull() {
			spec.Name = name.AsString()
		}
		id = cty.StringVal(containerID(addr, &spec))
		if err := d.checkOwner(ctx, addr, prior, id.AsString()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.checkPorts(ctx, id, desired.GetAttr("port")); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return cty.NilVal, err
	}
	return resource.WithAttrs(desired, map[string]cty.Value{"id": id}), nil
}

// checkOwner refuses to plan a container whose name another owner's
// container holds.
func (d *Driver) checkOwner(ctx context.Context, addr resource.Addr, prior cty.Value, id string) error {
	m, err := readMeta(d.dir(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return unreadableOwner(d.dir(id), id, err)
	}
	legacy := false
	if prior.IsWhollyKnown() && !prior.IsNull() {
		if p, err := decode(addr, prior); err == nil {
			legacy = recordedID(addr, p) == id
		}
	}
	if other := resource.ForeignOwner(ctx, m.Owner, legacy); other != "" {
		return alreadyExists(m.Name, other)
	}
	return nil
}

// checkPorts asks the networks, if they can tell, whether the published
// ports are free, so a conflict stops the plan instead of an apply half
// way through.
func (d *Driver) checkPorts(ctx context.Context, id, ports cty.Value) error {
	pc, ok := d.networks.(driver.PortChecker)
	if !ok || !id.IsKnown() || !ports.IsWhollyKnown() || ports.IsNull() || ports.LengthInt() == 0 {
		return nil
	}
	var published struct {
		Ports []resource.PortSpec `cty:"port"`
	}
	if err := resource.Decode(cty.ObjectVal(map[string]cty.Value{"port": ports}), &published); err != nil {
		return err
	}
	return pc.CheckPorts(ctx, id.AsString(), published.Ports)
}

// Create builds and starts the container. A container of the same id that
// the same owner made from the same value and that was started is returned
// as it is, so a repeated create changes nothing; one made from another
// value (its record dropped from the state, then its configuration changed)
// and the leftovers of a create that crashed are removed first. Another
// owner's container is refused.
//
// The name is claimed atomically across processes: under the name's lock,
// the record is read, leftovers are removed and the new record, naming
// the owner, is written before anything else of the container. Building it
// then runs without the lock, the record keeping the name taken.
func (d *Driver) Create(ctx context.Context, addr resource.Addr, desired cty.Value) (cty.Value, error) {
	return d.CreateInteractive(ctx, addr, desired, nil)
}

// CreateInteractive is Create for a one-off container (berth run) whose
// init reads the caller's stdin or a new terminal; nil in is Create.
func (d *Driver) CreateInteractive(ctx context.Context, addr resource.Addr, desired cty.Value, in *Interactive) (cty.Value, error) {
	spec, err := decode(addr, desired)
	if err != nil {
		return cty.NilVal, err
	}
	hash, err := specHash(desired)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	id := containerID(addr, spec)
	owner := resource.RecordedOwner(ctx)
	adopted, err := d.claimName(ctx, id, &meta{ID: id, Name: spec.Name, Owner: owner, SpecHash: hash})
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	if adopted != nil {
		return adopted.computed(desired), nil
	}
	m, err := d.create(ctx, id, spec, owner, hash, in)
	if err != nil {
		// What create made is undone by the same path Delete takes, which
		// tolerates every partial state.
		if cerr := d.cleanupLocked(ctx, id); cerr != nil {
			err = fmt.Errorf("%w (and cleaning up failed: %v)", err, cerr)
		}
		return cty.NilVal, fmt.Errorf("%s: create container %s: %w", addr, id, err)
	}
	return m.computed(desired), nil
}

// claimName takes container name id for the owner recorded in claimed,
// under the name's lock: another owner's container is refused; the same
// owner's container made from the same value and started is returned for
// Create to adopt; anything else there (leftovers of a crashed create, or
// a container made from another value) is removed and the claim written.
func (d *Driver) claimName(ctx context.Context, id string, claimed *meta) (adopted *meta, err error) {
	unlock, err := d.lockName(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := d.dir(id)
	if m, err := readMeta(dir); err == nil {
		if other := resource.ForeignOwner(ctx, m.Owner, true); other != "" {
			return nil, alreadyExists(m.Name, other)
		}
		if m.Started && m.SpecHash == claimed.SpecHash {
			if _, err := libcontainer.Load(d.stateRoot(), id); err == nil {
				return m, nil
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, unreadableOwner(dir, id, err)
	}
	if err := d.cleanup(ctx, id); err != nil {
		return nil, fmt.Errorf("remove leftovers of container %s: %w", id, err)
	}
	if err := claim(dir, claimed); err != nil {
		return nil, fmt.Errorf("claim container name %s: %w", id, err)
	}
	return nil, nil
}

// cleanupLocked runs cleanup under the name's lock, so that no other
// project claims the name between the record's removal and the
// directory's.
func (d *Driver) cleanupLocked(ctx context.Context, id string) error {
	unlock, err := d.lockName(id)
	if err != nil {
		return err
	}
	defer unlock()
	return d.cleanup(ctx, id)
}

// Update changes cgroup limits of the running container and records the
// other in-place attributes (labels, restart policy, stop settings,
// health check), which
// berth reads when it needs them.
func (d *Driver) Update(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error) {
	spec, err := decode(addr, desired)
	if err != nil {
		return cty.NilVal, err
	}
	priorSpec, err := decode(addr, prior)
	if err != nil {
		return cty.NilVal, err
	}
	hash, err := specHash(desired)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	id := recordedID(addr, priorSpec)
	unlock, err := d.lockName(id)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	defer unlock()
	m, err := readMeta(d.dir(id))
	if errors.Is(err, fs.ErrNotExist) {
		return cty.NilVal, fmt.Errorf("%s: container %s: %w", addr, id, resource.ErrNotFound)
	} else if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, unreadableOwner(d.dir(id), id, err))
	}
	if other := resource.ForeignOwner(ctx, m.Owner, true); other != "" {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, alreadyExists(m.Name, other))
	}
	c, err := libcontainer.Load(d.stateRoot(), id)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: container %s: %w", addr, id, notFound(err))
	}
	cfg := c.Config()
	cg := *cfg.Cgroups
	res := *cg.Resources
	cg.Resources = &res
	cfg.Cgroups = &cg
	if err := setResources(&res, spec.Resources); err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	// A stopped container has no running limits to change; the record it
	// starts from again (start.json) gets them below.
	if err := c.Set(cfg); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
		return cty.NilVal, fmt.Errorf("%s: update resources of container %s: %w", addr, id, err)
	}
	if start, err := readStartSpec(d.dir(id)); err == nil {
		if err := setResources(start.Config.Cgroups.Resources, spec.Resources); err != nil {
			return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
		}
		if err := writeStartSpec(d.dir(id), start); err != nil {
			return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
		}
	}
	m.Labels, m.Restart, m.StopSignal, m.StopTimeout = spec.Labels, spec.Restart, spec.StopSignal, spec.StopTimeout
	m.Healthcheck = healthcheck(spec, m.ImageHealthcheck)
	// The container is now what desired describes, so a create from the
	// same value (after its record was dropped from the state) adopts it.
	m.SpecHash = hash
	// And it is the caller's: one made before owners were recorded stops
	// being ownerless once touched.
	if o := resource.RecordedOwner(ctx); o != "" {
		m.Owner = o
	}
	if err := writeMeta(d.dir(id), m); err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	// A container that exited (Observe said Stopped) is started again, as
	// compose up does: same root filesystem, network namespace and mounts.
	if !running(c) {
		if err := d.startLocked(ctx, m); err != nil && !errors.Is(err, resource.ErrConflict) {
			return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
		}
	}
	return m.computed(desired), nil
}

// Delete stops the container (its stop signal, then SIGKILL after its
// stop timeout) and removes everything it had on the host. A container
// another owner now holds under this id is not the caller's any more: it
// is left alone and the delete succeeds. One whose record cannot be read
// is refused: berth cannot tell whose it is. The name's lock is held
// throughout, so no other project claims it before the directory is gone.
func (d *Driver) Delete(ctx context.Context, addr resource.Addr, prior cty.Value) error {
	spec, err := decode(addr, prior)
	if err != nil {
		return err
	}
	id := recordedID(addr, spec)
	unlock, err := d.lockName(id)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	defer unlock()
	sig, timeout := stopSettings(spec.StopSignal, spec.StopTimeout)
	if m, err := readMeta(d.dir(id)); err == nil {
		if resource.ForeignOwner(ctx, m.Owner, true) != "" {
			return nil
		}
		// The recorded settings are the newest: Update writes them.
		sig, timeout = stopSettings(m.StopSignal, m.StopTimeout)
		// Stopped on purpose: a supervisor watching it must not start it
		// again while it is being removed.
		if !m.StoppedByUser {
			m.StoppedByUser = true
			if err := writeMeta(d.dir(id), m); err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", addr, unreadableOwner(d.dir(id), id, err))
	}
	if c, err := libcontainer.Load(d.stateRoot(), id); err == nil {
		if err := d.stop(ctx, c, sig, timeout); err != nil {
			return fmt.Errorf("%s: stop container %s: %w", addr, id, err)
		}
	}
	if err := d.cleanup(ctx, id); err != nil {
		return fmt.Errorf("%s: delete container %s: %w", addr, id, err)
	}
	return nil
}

// Observe reports a container gone from libcontainer, or now another
// owner's, as Missing and one whose process ended as Degraded, with its
// exit status when this process (the agent that started it) recorded one.
func (d *Driver) Observe(ctx context.Context, addr resource.Addr, prior cty.Value) (resource.Observation, error) {
	spec, err := decode(addr, prior)
	if err != nil {
		return resource.Observation{}, err
	}
	id := recordedID(addr, spec)
	if m, err := readMeta(d.dir(id)); err == nil {
		if other := resource.ForeignOwner(ctx, m.Owner, true); other != "" {
			return resource.Observation{Health: resource.Missing, Reason: fmt.Sprintf("container %s now belongs to %s", m.Name, other)}, nil
		}
	}
	c, err := libcontainer.Load(d.stateRoot(), id)
	if errors.Is(err, libcontainer.ErrNotExist) {
		return resource.Observation{Health: resource.Missing, Reason: "container was removed outside berth"}, nil
	} else if err != nil {
		return resource.Observation{}, fmt.Errorf("%s: load container %s: %w", addr, id, err)
	}
	status, err := c.Status()
	if err != nil {
		return resource.Observation{}, fmt.Errorf("%s: status of container %s: %w", addr, id, err)
	}
	switch status {
	case libcontainer.Running, libcontainer.Created:
		return resource.Observation{Health: resource.Healthy}, nil
	case libcontainer.Paused:
		return resource.Observation{Health: resource.Degraded, Reason: "container is paused"}, nil
	}
	reason := "container is not running"
	if e, ok := lastExit(d.dir(id)); ok {
		reason = e.String()
	}
	if st, err := c.State(); err == nil && oomKilled(st.CgroupPaths) {
		reason += " (out of memory)"
	}
	if m, err := readMeta(d.dir(id)); err == nil && m.StoppedByUser {
		reason += " (stopped with berth stop or kill)"
	}
	// One berth made can start again where it was, files and all; one an
	// older berth made (no start record) is replaced.
	if _, err := readStartSpec(d.dir(id)); err == nil {
		return resource.Observation{Health: resource.Stopped, Reason: reason}, nil
	}
	return resource.Observation{Health: resource.Degraded, Reason: reason}, nil
}

// stopSettings reads a stop signal and timeout, falling back to Docker's
// SIGTERM and 10 s when they are unset or unreadable.
func stopSettings(signal, timeout string) (syscall.Signal, time.Duration) {
	sig := syscall.SIGTERM
	if n, ok := resource.Signals[strings.ToUpper(signal)]; ok {
		sig = syscall.Signal(n)
	}
	t, err := time.ParseDuration(timeout)
	if err != nil || timeout == "" {
		t = 10 * time.Second
	}
	return sig, t
}

// stop sends the stop signal, waits up to timeout for the init to exit,
// then kills it. PID 1 ignores signals it has no handler for, so the kill
// is the common path for programs such as sleep or busybox httpd.
func (d *Driver) stop(ctx context.Context, c *libcontainer.Container, sig syscall.Signal, timeout time.Duration) error {
	if !running(c) {
		return nil
	}
	if err := c.Signal(sig); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
		return err
	}
	if waitStopped(ctx, c, timeout) {
		return nil
	}
	if err := c.Signal(unix.SIGKILL); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
		return err
	}
	if !waitStopped(context.WithoutCancel(ctx), c, 10*time.Second) {
		return errors.New("container did not exit after SIGKILL")
	}
	return nil
}

func running(c *libcontainer.Container) bool {
	st, err := c.Status()
	return err == nil && st != libcontainer.Stopped
}

// waitStopped polls until the init is gone (a zombie counts as gone) or
// the timeout passes, and reports whether it stopped.
func waitStopped(ctx context.Context, c *libcontainer.Container, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		if !running(c) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(delay)
	}
}

// cleanup removes every trace of container id, whatever state a crash or a
// failed create left it in: the libcontainer container (and its cgroup),
// the network attachments while the namespace still exists, the namespace,
// the root filesystem mount and the state directory. Then the peers' hosts
// files forget it. It runs to the end even when ctx is cancelled (a second
// Ctrl-C): stopping half way would leak CNI rules, mounts and directories.
// The caller holds lockName(id).
func (d *Driver) cleanup(ctx context.Context, id string) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if c, err := libcontainer.Load(d.stateRoot(), id); err == nil {
		if running(c) {
			if err := c.Signal(unix.SIGKILL); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
				errs = append(errs, err)
			}
			waitStopped(ctx, c, 10*time.Second)
		}
		if err := c.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("destroy: %w", err))
		}
	} else if !errors.Is(err, libcontainer.ErrNotExist) {
		errs = append(errs, fmt.Errorf("load: %w", err))
	}
	// A container created but never started has no state.json, so Load
	// cannot see it; its directory and cgroup are removed by hand.
	if err := os.RemoveAll(filepath.Join(d.stateRoot(), id)); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroup(d.cgroupPath(id)); err != nil {
		errs = append(errs, err)
	}
	dir := d.dir(id)
	monitorGone(dir, 5*time.Second)
	m, merr := readMeta(dir)
	if merr == nil && m.Netns != "" {
		for _, a := range m.Attachments {
			if err := d.networks.Detach(ctx, a.attachment(id, m.Netns)); err != nil {
				errs = append(errs, fmt.Errorf("detach from network %s: %w", a.Network, err))
			}
		}
	}
	if err := removeNetNS(d.netnsPath(id)); err != nil {
		errs = append(errs, err)
	}
	if err := unmount(filepath.Join(dir, "rootfs")); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		// Keep the directory, and with it the metadata, so a later delete
		// can finish the job.
		return errors.Join(errs...)
	}
	if err := d.forget(id); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	d.pruneCgroupParent()
	if merr == nil {
		return d.refreshHosts(m.networkNames())
	}
	return nil
}

// pruneCgroupParent removes the cgroup parent once the last container on
// the host is gone (libcontainer removes only each container's leaf), so a
// host where everything was destroyed holds nothing of berth's.
func (d *Driver) pruneCgroupParent() {
	entries, err := os.ReadDir(d.cfg.StateDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			return
		}
	}
	// A parent still in use (ENOTEMPTY, EBUSY) stays, and that is fine.
	_ = removeCgroup(d.cfg.CgroupParent)
}

func notFound(err error) error {
	if errors.Is(err, libcontainer.ErrNotExist) {
		return fmt.Errorf("%w: %w", resource.ErrNotFound, err)
	}
	return err
}
