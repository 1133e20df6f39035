package resource

import (
	"time"

	"github.com/zclconf/go-cty/cty"
)

var strList = cty.List(cty.String)
var strMap = cty.Map(cty.String)

// ContainerSchema declares the container kind. Everything not marked InPlace
// replaces the container: libcontainer cannot change a running container's
// command, mounts or namespaces, while cgroup limits, the restart policy and
// labels can change under it.
var ContainerSchema = &Schema{
	Attributes: map[string]*Attribute{
		"name":        {Type: cty.String, Optional: true, Doc: "host-wide container name; defaults to PROJECT-LABEL", Validate: validateName},
		"image":       {Type: cty.String, Required: true, Reason: "image changed", Doc: "image reference, usually image.NAME.ref"},
		"command":     {Type: strList, Optional: true, Doc: "arguments; defaults to the image's CMD"},
		"entrypoint":  {Type: strList, Optional: true, Doc: "defaults to the image's ENTRYPOINT"},
		"env":         {Type: strMap, Optional: true, Doc: "environment, added to the image's"},
		"working_dir": {Type: cty.String, Optional: true, Validate: validateAbsPath},
		"user":        {Type: cty.String, Optional: true, Doc: "user[:group], by name or number"},
		"hostname":    {Type: cty.String, Optional: true, Validate: validateHostname, Doc: "defaults to the container name"},
		"restart": {Type: cty.String, Optional: true, Default: cty.StringVal("no"), Update: InPlace, Validate: validateRestart,
			Doc: `"no", "always", "unless-stopped", "on-failure[:N]"; enforced by the agent`},
		"read_only":    {Type: cty.Bool, Optional: true, Default: cty.False, Doc: "mount the root filesystem read-only"},
		"labels":       {Type: strMap, Optional: true, Update: InPlace},
		"stop_signal":  {Type: cty.String, Optional: true, Default: cty.StringVal("SIGTERM"), Update: InPlace, Validate: validateSignal},
		"stop_timeout": {Type: cty.String, Optional: true, Default: cty.StringVal("10s"), Update: InPlace, Validate: validateDuration, Doc: "time between the stop signal and SIGKILL"},
		"cap_add":      {Type: strList, Optional: true, Validate: validateCapabilities},
		"cap_drop":     {Type: strList, Optional: true, Validate: validateCapabilities},

		"id":           {Type: cty.String, Computed: true, Reason: "name changed", Doc: "runtime id, which follows from the name"},
		"ip_address":   {Type: cty.String, Computed: true, Doc: "address on the first network"},
		"ip_addresses": {Type: strMap, Computed: true, Doc: "address on each network, by network name"},
	},
	Blocks: map[string]*Block{
		"port": {Nesting: NestingList, Reason: "ports changed", Doc: "a published port", Schema: &Schema{Attributes: map[string]*Attribute{
			"target":    {Type: cty.Number, Required: true, Validate: validatePort, Doc: "port inside the container"},
			"published": {Type: cty.Number, Required: true, Validate: validatePort, Doc: "port on the host"},
			"host_ip":   {Type: cty.String, Optional: true, Default: cty.StringVal("0.0.0.0"), Validate: validateIPv4},
			"protocol":  {Type: cty.String, Optional: true, Default: cty.StringVal("tcp"), Validate: oneOf("tcp", "udp")},
		}}},
		"mount": {Nesting: NestingList, Reason: "mounts changed", Doc: "a volume, bind or tmpfs mount", Schema: &Schema{
			Attributes: map[string]*Attribute{
				"target":     {Type: cty.String, Required: true, Validate: validateAbsPath},
				"volume":     {Type: cty.String, Optional: true, Doc: "volume name, usually volume.NAME.name"},
				"bind":       {Type: cty.String, Optional: true, Path: true, Doc: "host path, relative to the configuration"},
				"tmpfs":      {Type: cty.Bool, Optional: true, Default: cty.False},
				"tmpfs_size": {Type: cty.String, Optional: true, Validate: validateSize},
				"read_only":  {Type: cty.Bool, Optional: true, Default: cty.False},
			},
			Check: checkMount,
		}},
		"network": {Nesting: NestingList, Reason: "networks changed", Doc: "a network attachment", Schema: &Schema{Attributes: map[string]*Attribute{
			"name":         {Type: cty.String, Required: true, Doc: "network name, usually network.NAME.name"},
			"aliases":      {Type: strList, Optional: true, Doc: "extra names peers resolve to this container"},
			"ipv4_address": {Type: cty.String, Optional: true, Validate: validateIPv4},
		}}},
		"resources": {Nesting: NestingSingle, Update: InPlace, Doc: "cgroup limits", Schema: &Schema{Attributes: map[string]*Attribute{
			"memory": {Type: cty.String, Optional: true, Validate: validateMemory, Doc: `such as "256M"`},
			"cpus":   {Type: cty.Number, Optional: true, Validate: validatePositive, Doc: "CPUs, may be fractional"},
			"pids":   {Type: cty.Number, Optional: true, Validate: validatePositive, Doc: "process limit"},
		}}},
		"healthcheck": {Nesting: NestingSingle, Update: InPlace, Doc: "a command the agent runs in the container to tell whether it is healthy", Schema: &Schema{
			Attributes: map[string]*Attribute{
				"command":      {Type: strList, Optional: true, Validate: validateNonEmptyList, Doc: "the check, exec form: exit 0 is healthy"},
				"shell":        {Type: cty.String, Optional: true, Doc: "the check, run with /bin/sh -c"},
				"interval":     {Type: cty.String, Optional: true, Default: cty.StringVal("30s"), Validate: validatePositiveDuration, Doc: "time between checks"},
				"timeout":      {Type: cty.String, Optional: true, Default: cty.StringVal("30s"), Validate: validatePositiveDuration, Doc: "a check running longer fails"},
				"retries":      {Type: cty.Number, Optional: true, Default: cty.NumberIntVal(3), Validate: validateCount, Doc: "consecutive failures that make the container unhealthy"},
				"start_period": {Type: cty.String, Optional: true, Default: cty.StringVal("0s"), Validate: validateDuration, Doc: "time after a start during which failures do not count"},
			},
			Check: checkHealthcheck,
		}},
	},
	Check: checkContainer,
}

// checkContainer refuses published ports without a bridge network to
// publish them on: they would be accepted and do nothing.
func checkContainer(v cty.Value) []AttrError {
	ports, networks := v.GetAttr("port"), v.GetAttr("network")
	if !ports.IsKnown() || ports.IsNull() || ports.LengthInt() == 0 || !networks.IsKnown() {
		return nil
	}
	if networks.IsNull() || networks.LengthInt() == 0 {
		return []AttrError{{Path: cty.GetAttrPath("port"), Msg: "a published port needs a network to publish it from: add a network block naming a bridge network (a container without one has only loopback)"}}
	}
	return nil
}

// checkHealthcheck wants exactly one of command and shell.
func checkHealthcheck(v cty.Value) []AttrError {
	cmd, sh := v.GetAttr("command"), v.GetAttr("shell")
	if !cmd.IsKnown() || !sh.IsKnown() {
		return nil
	}
	switch {
	case cmd.IsNull() && sh.IsNull():
		return []AttrError{{Path: cty.GetAttrPath("interval"), Msg: `a healthcheck needs a check to run: set command (a list, such as ["wget", "-q", "-O-", "http://localhost/"]) or shell (a string run with /bin/sh -c)`}}
	case !cmd.IsNull() && !sh.IsNull():
		return []AttrError{{Path: cty.GetAttrPath("shell"), Msg: "a healthcheck runs one check: set command or shell, not both"}}
	}
	return nil
}

func checkMount(v cty.Value) []AttrError {
	set := 0
	for _, name := range []string{"volume", "bind"} {
		if a := v.GetAttr(name); !a.IsNull() {
			set++
		}
	}
	if t := v.GetAttr("tmpfs"); t.IsKnown() && !t.IsNull() && t.True() {
		set++
	}
	switch {
	case set == 0:
		return []AttrError{{Path: cty.GetAttrPath("target"), Msg: "a mount needs a source: set one of volume, bind or tmpfs = true"}}
	case set > 1:
		return []AttrError{{Path: cty.GetAttrPath("target"), Msg: "a mount has exactly one source: set only one of volume, bind and tmpfs = true"}}
	}
	return nil
}

// ContainerSpec is the container kind decoded for drivers.
type ContainerSpec struct {
	Name        string            `cty:"name"`
	Image       string            `cty:"image"`
	Command     []string          `cty:"command"`
	Entrypoint  []string          `cty:"entrypoint"`
	Env         map[string]string `cty:"env"`
	WorkingDir  string            `cty:"working_dir"`
	User        string            `cty:"user"`
	Hostname    string            `cty:"hostname"`
	Restart     string            `cty:"restart"`
	ReadOnly    bool              `cty:"read_only"`
	Labels      map[string]string `cty:"labels"`
	StopSignal  string            `cty:"stop_signal"`
	StopTimeout string            `cty:"stop_timeout"`
	CapAdd      []string          `cty:"cap_add"`
	CapDrop     []string          `cty:"cap_drop"`
	Ports       []PortSpec        `cty:"port"`
	Mounts      []MountSpec       `cty:"mount"`
	Networks    []AttachmentSpec  `cty:"network"`
	Resources   ResourcesSpec     `cty:"resources"`
	Healthcheck HealthcheckSpec   `cty:"healthcheck"`

	ID          string            `cty:"id"`
	IPAddress   string            `cty:"ip_address"`
	IPAddresses map[string]string `cty:"ip_addresses"`
}

// PortSpec publishes a container port on the host.
type PortSpec struct {
	Target    int    `cty:"target"`
	Published int    `cty:"published"`
	HostIP    string `cty:"host_ip"`
	Protocol  string `cty:"protocol"`
}

// MountSpec is one of a volume, a bind mount or a tmpfs.
type MountSpec struct {
	Target    string `cty:"target"`
	Volume    string `cty:"volume"`
	Bind      string `cty:"bind"`
	Tmpfs     bool   `cty:"tmpfs"`
	TmpfsSize string `cty:"tmpfs_size"`
	ReadOnly  bool   `cty:"read_only"`
}

// AttachmentSpec attaches the container to a network.
type AttachmentSpec struct {
	Name        string   `cty:"name"`
	Aliases     []string `cty:"aliases"`
	IPv4Address string   `cty:"ipv4_address"`
}

// ResourcesSpec holds cgroup limits; zero means unlimited.
type ResourcesSpec struct {
	Memory string  `cty:"memory"`
	CPUs   float64 `cty:"cpus"`
	Pids   int64   `cty:"pids"`
}

// HealthcheckSpec is a container's health check; without command and
// shell (no healthcheck block) there is none. Durations are as validated
// ("30s"); Durations reads them.
type HealthcheckSpec struct {
	Command     []string `cty:"command" json:"command,omitempty"`
	Shell       string   `cty:"shell" json:"shell,omitempty"`
	Interval    string   `cty:"interval" json:"interval,omitempty"`
	Timeout     string   `cty:"timeout" json:"timeout,omitempty"`
	Retries     int      `cty:"retries" json:"retries,omitempty"`
	StartPeriod string   `cty:"start_period" json:"start_period,omitempty"`
}

// Enabled says whether there is a check to run.
func (h HealthcheckSpec) Enabled() bool { return len(h.Command) > 0 || h.Shell != "" }

// Args is the check's command line: command as given, or shell run by
// /bin/sh -c.
func (h HealthcheckSpec) Args() []string {
	if len(h.Command) > 0 {
		return h.Command
	}
	return []string{"/bin/sh", "-c", h.Shell}
}

// Durations reads interval, timeout and start period, with Docker's
// defaults (30s, 30s, 0) for those unset or unreadable, and the retries
// (default 3).
func (h HealthcheckSpec) Durations() (interval, timeout, startPeriod time.Duration, retries int) {
	read := func(s string, def time.Duration) time.Duration {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d == 0 && def != 0 {
			return def
		}
		return d
	}
	retries = h.Retries
	if retries <= 0 {
		retries = 3
	}
	return read(h.Interval, 30*time.Second), read(h.Timeout, 30*time.Second), read(h.StartPeriod, 0), retries
}
