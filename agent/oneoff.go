package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"syscall"

	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/driver/image"
	"github.com/seed-e88ffcd2/berth/driver/network"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// berth exec and berth run: a process in a running container, and one-off
// containers that belong to no project. The types are the container
// driver's, named here so that the CLI depends on the agent only.
type (
	// ExecOptions describe a process berth exec runs.
	ExecOptions = container.ExecOptions
	// Interactive says how a one-off container's init reads its input:
	// the caller's stdin, or a new terminal whose master Console gets.
	Interactive = container.Interactive
)

// Exec runs a process in the running container name and returns its exit
// code (container.Driver.Exec).
func (h *Host) Exec(ctx context.Context, name string, o ExecOptions) (int, error) {
	return h.containers.Exec(ctx, name, o)
}

// Pull policies of a one-off container's image, as docker run --pull has
// them.
const (
	PullMissing = "missing" // pull when the host has no image of that name
	PullAlways  = "always"
	PullNever   = "never"
)

// OneOffImage names the image a one-off container runs, NAME@DIGEST, from
// what a person typed: an image name the host's store holds (an applied
// image block's, or a pulled one's), NAME@DIGEST or a digest. A registry
// reference the store lacks is pulled first (policy), and pulling is
// called before the pull starts.
func (h *Host) OneOffImage(ctx context.Context, name, policy string, pulling func()) (string, error) {
	store := h.imageStore()
	ref, err := store.Ref(name)
	switch {
	case policy == PullAlways:
	case err == nil || !errors.Is(err, resource.ErrNotFound):
		return ref, err
	case policy == PullNever:
		return "", resource.Errorf(resource.ErrNotFound, "no image %q on this host (images come from applied image blocks, or berth image pull)", name)
	}
	if _, perr := resource.ParsePullRef(name); perr != nil {
		if policy == PullAlways {
			return "", resource.Errorf(resource.ErrInvalid, "--pull always: %v", perr)
		}
		return "", resource.Errorf(resource.ErrNotFound, "no image %q on this host (images come from applied image blocks, or berth image pull)", name)
	}
	if pulling != nil {
		pulling()
	}
	if _, perr := store.Pull(ctx, name, image.PullOptions{}); perr != nil {
		if err != nil {
			return "", fmt.Errorf("no image %q on this host, and pulling it failed: %w", name, perr)
		}
		return "", fmt.Errorf("pulling %s: %w", name, perr)
	}
	return store.Ref(name)
}

func (h *Host) imageStore() *image.Store { return h.Drivers[resource.KindImage].(*image.Store) }

// OneOff describes a container berth run makes. Unset fields take the
// image's values (command, entrypoint, environment, working directory,
// user) or the container kind's defaults.
type OneOff struct {
	// Name is the container's name; empty chooses a free one such as
	// "brave-heron".
	Name string
	// Image is a stored image's reference, as OneOffImage gives it.
	Image      string
	Command    []string
	Entrypoint []string
	Env        map[string]string
	WorkingDir string
	User       string
	Hostname   string
	Labels     map[string]string
	ReadOnly   bool
	Mounts     []resource.MountSpec
	Ports      []resource.PortSpec
	Networks   []string // by name
	Memory     string
	CPUs       float64
	StopSignal string
	// StopTimeout is a duration such as "10s".
	StopTimeout string
	// AutoRemove marks the container for removal once it exits
	// (resource.AutoRemoveLabel): berth run --rm.
	AutoRemove bool
}

// OneOffContainer is a one-off container that exists.
type OneOffContainer struct {
	Name, ID string

	h     *Host
	owner resource.Owner
	addr  resource.Addr
	value cty.Value
}

// CreateOneOff makes and starts a one-off container, its init talking to
// the caller as in says (nil: it reads nothing, and its output goes to the
// log). Its owner is a run owner of its own (resource.RunProject), so no
// project can take it over and no other run can mistake it for its own.
// What a plan would refuse is refused here too, before anything is made:
// invalid values, a published port in use, a missing bind-mount source, a
// name already taken.
func (h *Host) CreateOneOff(ctx context.Context, o OneOff, in *Interactive) (*OneOffContainer, error) {
	name := o.Name
	if name == "" {
		var err error
		if name, err = h.freeName(ctx); err != nil {
			return nil, err
		}
	} else if _, err := h.containers.Inspect(ctx, name); err == nil {
		return nil, resource.Errorf(resource.ErrAlreadyExists, "a container named %q already exists on this host (berth ps -a lists them): choose another --name, or remove that one first", name)
	} else if !errors.Is(err, resource.ErrNotFound) {
		return nil, err
	}
	v, err := oneOffValue(o, name)
	if err != nil {
		return nil, err
	}
	if err := h.networksExist(ctx, o.Networks); err != nil {
		return nil, err
	}
	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce)
	addr := resource.Addr{Kind: resource.KindContainer, Name: name}
	owner := resource.Owner{Project: resource.RunProject, Addr: resource.Addr{Kind: resource.KindContainer, Name: name, Key: resource.StringKey(hex.EncodeToString(nonce))}}
	ctx = resource.WithOwner(ctx, owner)
	if v, err = h.containers.Preview(ctx, addr, cty.NullVal(v.Type()), v); err != nil {
		return nil, err
	}
	if v, err = h.containers.CreateInteractive(ctx, addr, v, in); err != nil {
		return nil, err
	}
	return &OneOffContainer{Name: name, ID: v.GetAttr("id").AsString(), h: h, owner: owner, addr: addr, value: v}, nil
}

// networksExist refuses a --network that names no network on the host,
// in one sentence, before anything is made: the container driver would
// find out only while making the container, deep in its own wrapping.
func (h *Host) networksExist(ctx context.Context, names []string) error {
	nets, ok := h.Drivers[resource.KindNetwork].(*network.Driver)
	if !ok {
		return nil
	}
	for _, n := range names {
		if _, err := nets.Mode(ctx, n); errors.Is(err, resource.ErrNotFound) {
			return resource.Errorf(resource.ErrNotFound, "network %s does not exist on this host: networks come from the network blocks of an applied configuration (berth state list shows them)", n)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// Exited is closed once the container's init has exited and its exit
// status and output are recorded.
func (c *OneOffContainer) Exited() (<-chan struct{}, error) { return c.h.containers.Exited(c.ID) }

// LogPath is the log of the container's output (internal/logfile).
func (c *OneOffContainer) LogPath() string { return c.h.containers.LogPath(c.ID) }

// Signal sends sig to the container's init.
func (c *OneOffContainer) Signal(ctx context.Context, sig syscall.Signal) error {
	return c.h.containers.Kill(ctx, c.Name, sig, true)
}

// ExitCode is how the container's init ended: its exit status, or 128 +
// the signal that killed it.
func (c *OneOffContainer) ExitCode(ctx context.Context) (int, error) {
	in, err := c.h.containers.Inspect(ctx, c.Name)
	if err != nil {
		return 0, err
	}
	if in.Status != container.StatusExited {
		return 0, resource.Errorf(resource.ErrConflict, "container %s is %s", c.Name, in.Status)
	}
	return in.ExitCode, nil
}

// Remove deletes the container and everything it had on the host,
// stopping it first if it still runs.
func (c *OneOffContainer) Remove(ctx context.Context) error {
	return c.h.containers.Delete(resource.WithOwner(context.WithoutCancel(ctx), c.owner), c.addr, c.value)
}

// RemoveOnExit deletes the container once it exits, from a goroutine of
// this process: how the agent, which outlives the command, keeps the
// promise of berth run --rm -d. An agent restarted meanwhile finds the
// container by its resource.AutoRemoveLabel instead.
func (c *OneOffContainer) RemoveOnExit() error {
	exited, err := c.Exited()
	if err != nil {
		return err
	}
	go func() {
		<-exited
		_ = c.Remove(context.Background())
	}()
	return nil
}

// oneOffValue is the container value of o, as the DSL would make it from
// a container block: defaults filled in, every value checked by the
// schema's validators.
func oneOffValue(o OneOff, name string) (cty.Value, error) {
	strs := func(ss []string) cty.Value {
		if ss == nil {
			return cty.NullVal(cty.List(cty.String))
		}
		if len(ss) == 0 {
			return cty.ListValEmpty(cty.String)
		}
		vals := make([]cty.Value, len(ss))
		for i, s := range ss {
			vals[i] = cty.StringVal(s)
		}
		return cty.ListVal(vals)
	}
	str := func(s string) cty.Value {
		if s == "" {
			return cty.NullVal(cty.String)
		}
		return cty.StringVal(s)
	}
	strMap := func(m map[string]string) cty.Value {
		if len(m) == 0 {
			return cty.NullVal(cty.Map(cty.String))
		}
		return resource.StringMapVal(m)
	}
	labels := map[string]string{}
	for k, v := range o.Labels {
		labels[k] = v
	}
	if o.AutoRemove {
		labels[resource.AutoRemoveLabel] = "true"
	}
	schema := resource.ContainerSchema
	set := map[string]cty.Value{
		"name":         cty.StringVal(name),
		"image":        cty.StringVal(o.Image),
		"command":      strs(o.Command),
		"entrypoint":   strs(o.Entrypoint),
		"env":          strMap(o.Env),
		"working_dir":  str(o.WorkingDir),
		"user":         str(o.User),
		"hostname":     str(o.Hostname),
		"labels":       strMap(labels),
		"read_only":    cty.BoolVal(o.ReadOnly),
		"stop_signal":  str(o.StopSignal),
		"stop_timeout": str(o.StopTimeout),
	}
	var mounts, ports, nets []cty.Value
	for _, m := range o.Mounts {
		mounts = append(mounts, objectVal(schema.Blocks["mount"].Schema, map[string]cty.Value{
			"target": cty.StringVal(m.Target), "volume": str(m.Volume), "bind": str(m.Bind),
			"tmpfs": cty.BoolVal(m.Tmpfs), "tmpfs_size": str(m.TmpfsSize), "read_only": cty.BoolVal(m.ReadOnly),
		}))
	}
	for _, p := range o.Ports {
		ports = append(ports, objectVal(schema.Blocks["port"].Schema, map[string]cty.Value{
			"target": cty.NumberIntVal(int64(p.Target)), "published": cty.NumberIntVal(int64(p.Published)),
			"host_ip": str(p.HostIP), "protocol": str(p.Protocol),
		}))
	}
	for _, n := range o.Networks {
		nets = append(nets, objectVal(schema.Blocks["network"].Schema, map[string]cty.Value{"name": cty.StringVal(n)}))
	}
	for block, elems := range map[string][]cty.Value{"mount": mounts, "port": ports, "network": nets} {
		if len(elems) > 0 {
			set[block] = cty.ListVal(elems)
		}
	}
	if o.Memory != "" || o.CPUs != 0 {
		res := map[string]cty.Value{"memory": str(o.Memory)}
		if o.CPUs != 0 {
			res["cpus"] = cty.NumberFloatVal(o.CPUs)
		}
		set["resources"] = objectVal(schema.Blocks["resources"].Schema, res)
	}
	v := objectVal(schema, set)
	if errs := checkValue(schema, v, nil); len(errs) > 0 {
		return cty.NilVal, resource.Errorf(resource.ErrInvalid, "%s", strings.Join(errs, "; "))
	}
	return v, nil
}

// objectVal is an object of schema with the attributes and blocks in set,
// the others at their defaults: null, or an empty list of blocks.
func objectVal(schema *resource.Schema, set map[string]cty.Value) cty.Value {
	vals := map[string]cty.Value{}
	for name, a := range schema.Attributes {
		v, ok := set[name]
		if !ok || v.IsNull() {
			v = cty.NullVal(a.Type)
			if a.Default != cty.NilVal {
				v = a.Default
			}
		}
		vals[name] = v
	}
	for name, b := range schema.Blocks {
		v, ok := set[name]
		switch {
		case ok:
		case b.Nesting == resource.NestingSingle:
			v = cty.NullVal(b.Schema.ImpliedType())
		default:
			v = cty.ListValEmpty(b.Schema.ImpliedType())
		}
		vals[name] = v
	}
	return cty.ObjectVal(vals)
}

// checkValue runs the schema's validators and checks over v, as the DSL
// does over a block, and says what is wrong, by flag where one sets it.
func checkValue(schema *resource.Schema, v cty.Value, path []string) []string {
	var errs []string
	where := func(attr string) string {
		p := strings.Join(append(append([]string(nil), path...), attr), ".")
		if f, ok := oneOffFlags[p]; ok {
			return f
		}
		return p
	}
	for _, name := range schema.AttributeNames() {
		a, av := schema.Attributes[name], v.GetAttr(name)
		if a.Validate != nil && av.IsKnown() && !av.IsNull() {
			if err := a.Validate(av); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", where(name), err))
			}
		}
	}
	for _, name := range schema.BlockNames() {
		b, bv := schema.Blocks[name], v.GetAttr(name)
		if bv.IsNull() {
			continue
		}
		if b.Nesting == resource.NestingSingle {
			errs = append(errs, checkValue(b.Schema, bv, append(path, name))...)
			continue
		}
		for it := bv.ElementIterator(); it.Next(); {
			_, e := it.Element()
			errs = append(errs, checkValue(b.Schema, e, append(path, name))...)
		}
	}
	if schema.Check != nil {
		for _, e := range schema.Check(v) {
			attr := ""
			if len(e.Path) > 0 {
				if step, ok := e.Path[0].(cty.GetAttrStep); ok {
					attr = step.Name
				}
			}
			errs = append(errs, fmt.Sprintf("%s: %s", where(attr), e.Msg))
		}
	}
	return errs
}

// oneOffFlags names the berth run flag behind each attribute, for errors.
var oneOffFlags = map[string]string{
	"name": "--name", "working_dir": "--workdir", "user": "--user", "hostname": "--hostname",
	"stop_signal": "--stop-signal", "stop_timeout": "--stop-timeout", "labels": "--label",
	"port": "--publish", "port.target": "--publish", "port.published": "--publish", "port.host_ip": "--publish",
	"mount.target": "--volume", "mount": "--volume",
	"resources.memory": "--memory", "resources.cpus": "--cpus",
}

// Words of the names chosen for one-off containers without --name.
var (
	nameAdjectives = []string{"brave", "calm", "eager", "fair", "gentle", "happy", "jolly", "keen", "lively", "merry",
		"nimble", "proud", "quiet", "rapid", "steady", "swift", "tidy", "vivid", "witty", "bold",
		"bright", "clever", "daring", "hardy", "lucky", "mellow", "noble", "plucky", "sunny", "zesty"}
	nameNouns = []string{"anchor", "barge", "beacon", "buoy", "cabin", "canal", "cove", "current", "dinghy", "dock",
		"ferry", "harbor", "heron", "jetty", "keel", "lagoon", "mast", "mooring", "osprey", "pier",
		"quay", "raft", "reef", "schooner", "skiff", "tide", "tugboat", "wharf", "yawl", "gull"}
)

// freeName chooses a name no container on the host has, such as
// "brave-heron" (a hyphen, not Docker's underscore: the name is the
// container's hostname too).
func (h *Host) freeName(ctx context.Context) (string, error) {
	pick := func(words []string) string {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(words))))
		return words[n.Int64()]
	}
	for i := 0; ; i++ {
		name := pick(nameAdjectives) + "-" + pick(nameNouns)
		if i >= 10 {
			n, _ := rand.Int(rand.Reader, big.NewInt(10000))
			name = fmt.Sprintf("%s-%d", name, n.Int64())
		}
		_, err := h.containers.Inspect(ctx, name)
		if errors.Is(err, resource.ErrNotFound) {
			return name, nil
		} else if err != nil {
			return "", err
		}
		if i > 20 {
			return "", errors.New("no free container name found: give one with --name")
		}
	}
}
