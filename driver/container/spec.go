package container

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/resource"
	"golang.org/x/sys/unix"
)

// defaultPath is the PATH a container gets when its image sets none,
// Docker's.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// cfsPeriod is the CFS period cpus are expressed against, Docker's.
const cfsPeriod = 100000

// buildInput is what a container's libcontainer configuration is made of.
type buildInput struct {
	id         string
	spec       *resource.ContainerSpec
	image      *driver.ImageConfig
	rootfs     string // the mounted overlay
	hostname   string
	mounts     []specs.Mount // volumes, binds, tmpfs and /etc files
	netns      string        // a namespace to join, or "" for a private one
	hostNet    bool          // share the host's network namespace
	cgroupPath string
}

// buildConfig makes the libcontainer configuration and init process of a
// container, starting from runc's example spec (the namespaces, masked
// paths and device rules of `runc spec`), with Docker's default seccomp
// profile.
func buildConfig(in buildInput) (*configs.Config, *libcontainer.Process, error) {
	spec := in.spec
	args := command(spec, in.image)
	if len(args) == 0 {
		return nil, nil, errors.New("no command: the image has no ENTRYPOINT or CMD and the container sets no command")
	}
	userSpec := spec.User
	if userSpec == "" {
		userSpec = in.image.User
	}
	execUser, err := lookupUser(in.rootfs, userSpec)
	if err != nil {
		return nil, nil, err
	}
	cwd := spec.WorkingDir
	if cwd == "" {
		cwd = in.image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	// Docker creates a missing working directory; the overlay is writable
	// on the host even when the container's root is read-only.
	if dir, err := securejoin.SecureJoin(in.rootfs, cwd); err == nil {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, nil, fmt.Errorf("create working directory %s: %w", cwd, err)
			}
		}
	}
	caps, err := capabilities(spec.CapAdd, spec.CapDrop)
	if err != nil {
		return nil, nil, err
	}

	s := specconv.Example()
	s.Root = &specs.Root{Path: in.rootfs, Readonly: spec.ReadOnly}
	s.Hostname = in.hostname
	s.Process.Terminal = false
	s.Process.Args = args
	s.Process.Env = environment(in.image.Env, spec.Env, in.hostname, execUser.Home)
	s.Process.Cwd = cwd
	s.Process.User = specs.User{UID: uint32(execUser.Uid), GID: uint32(execUser.Gid)}
	// Docker allows setuid programs (su, ping) to gain privileges.
	s.Process.NoNewPrivileges = false
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	s.Process.Rlimits = nil
	s.Mounts = append(s.Mounts, in.mounts...)
	s.Linux.CgroupsPath = in.cgroupPath
	var namespaces []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			if in.hostNet {
				continue
			}
			ns.Path = in.netns
		}
		namespaces = append(namespaces, ns)
	}
	s.Linux.Namespaces = namespaces
	if in.hostNet {
		// Without its own network namespace the container must not
		// remount the host's /sys; Docker binds it read-only instead.
		for i, m := range s.Mounts {
			if m.Destination == "/sys" {
				s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			}
		}
	}

	// Docker's default seccomp profile, as `docker run` applies it; it
	// depends on the capabilities, so it comes after them.
	if s.Linux.Seccomp, err = defaultSeccomp(s); err != nil {
		return nil, nil, err
	}

	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: in.id,
		Spec:       s,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("container configuration: %w", err)
	}
	if err := setResources(cfg.Cgroups.Resources, spec.Resources); err != nil {
		return nil, nil, err
	}
	n := nofileLimit()
	cfg.Rlimits = []configs.Rlimit{{Type: unix.RLIMIT_NOFILE, Hard: n, Soft: n}}

	proc := &libcontainer.Process{
		Args:             s.Process.Args,
		Env:              s.Process.Env,
		UID:              execUser.Uid,
		GID:              execUser.Gid,
		AdditionalGroups: execUser.Sgids,
		Cwd:              cwd,
		Init:             true,
	}
	return cfg, proc, nil
}

// command is the container's argv: the entrypoint (the container's or the
// image's) followed by the command (the container's, or the image's CMD
// unless the container set its own entrypoint, as Docker does).
func command(spec *resource.ContainerSpec, img *driver.ImageConfig) []string {
	entrypoint, cmd := img.Entrypoint, img.Cmd
	if len(spec.Entrypoint) > 0 {
		entrypoint, cmd = spec.Entrypoint, nil
	}
	if len(spec.Command) > 0 {
		cmd = spec.Command
	}
	return append(slices.Clone(entrypoint), cmd...)
}

// environment is the image's environment with the container's on top,
// plus PATH, HOSTNAME and HOME when nothing sets them.
func environment(image []string, env map[string]string, hostname, home string) []string {
	var keys []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	set("PATH", defaultPath)
	set("HOSTNAME", hostname)
	for _, kv := range image {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		set(k, env[k])
	}
	if _, ok := vals["HOME"]; !ok {
		if home == "" {
			home = "/"
		}
		set("HOME", home)
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + vals[k]
	}
	return out
}

// lookupUser resolves "name|uid[:group|gid]" against the image's
// /etc/passwd and /etc/group, defaulting to root.
func lookupUser(rootfs, spec string) (*user.ExecUser, error) {
	passwd, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	u, err := user.GetExecUserPath(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", spec, err)
	}
	return u, nil
}

// capabilities is Docker's default set with cap_add added and cap_drop
// removed; "ALL" in cap_drop starts from nothing, "ALL" in cap_add from
// everything.
func capabilities(add, drop []string) ([]string, error) {
	norm := func(list []string) ([]string, bool, error) {
		var out []string
		all := false
		for _, c := range list {
			n, ok := resource.NormalizeCapability(c)
			if !ok {
				return nil, false, fmt.Errorf("%q is not a Linux capability", c)
			}
			if n == "ALL" {
				all = true
				continue
			}
			out = append(out, n)
		}
		return out, all, nil
	}
	adds, addAll, err := norm(add)
	if err != nil {
		return nil, err
	}
	drops, dropAll, err := norm(drop)
	if err != nil {
		return nil, err
	}
	set := slices.Clone(resource.DefaultCapabilities)
	if dropAll {
		set = nil
	}
	if addAll {
		set = slices.Clone(resource.Capabilities)
	}
	for _, c := range adds {
		if !slices.Contains(set, c) {
			set = append(set, c)
		}
	}
	set = slices.DeleteFunc(set, func(c string) bool { return slices.Contains(drops, c) })
	out := make([]string, len(set))
	for i, c := range set {
		out[i] = "CAP_" + c
	}
	sort.Strings(out)
	return out, nil
}

// setResources writes the container's limits into r. Unset limits are
// written as unlimited, not left out, so an update that removes a limit
// lifts it.
func setResources(r *cgroups.Resources, spec resource.ResourcesSpec) error {
	r.Memory = -1
	if spec.Memory != "" {
		n, err := resource.ParseMemory(spec.Memory)
		if err != nil {
			return err
		}
		r.Memory = n
	}
	r.CpuPeriod = cfsPeriod
	r.CpuQuota = -1
	if spec.CPUs > 0 {
		// The kernel refuses quotas under 1 ms.
		r.CpuQuota = max(int64(math.Round(spec.CPUs*cfsPeriod)), 1000)
	}
	pids := int64(-1)
	if spec.Pids > 0 {
		pids = spec.Pids
	}
	r.PidsLimit = &pids
	return nil
}

// nofileLimit is the open-file limit containers get: Docker's 1048576,
// bounded by the kernel's fs.nr_open and, when this process lacks
// CAP_SYS_RESOURCE (a restricted host), by its own hard limit, which it
// cannot raise for its children either.
func nofileLimit() uint64 {
	limit := uint64(1048576)
	if data, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64); err == nil {
			limit = min(limit, n)
		}
	}
	if !hasCapability(unix.CAP_SYS_RESOURCE) {
		var own unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &own); err == nil {
			limit = min(limit, own.Max)
		}
	}
	return limit
}

// hasCapability tells whether this process has capability c in its
// effective set.
func hasCapability(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0
}
