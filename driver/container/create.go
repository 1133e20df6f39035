package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/seed-e88ffcd2/berth/resource"
)

// Network modes of a container, from its network blocks.
const (
	netPrivate = "private" // its own namespace with only loopback
	netHost    = "host"    // the host's namespace
	netBridge  = "bridge"  // a persistent namespace joined to bridge networks
)

// create does the work of Create, once the name is claimed (claimName),
// recording the container's owner and the hash of the value it is made
// from; on error the caller runs cleanup.
func (d *Driver) create(ctx context.Context, id string, spec *resource.ContainerSpec, owner, hash string, in *Interactive) (*meta, error) {
	dir := d.dir(id)
	for _, sub := range []string{"upper", "work", "rootfs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	hostname := spec.Hostname
	if hostname == "" {
		hostname = spec.Name
	}
	m := &meta{
		ID: id, Name: spec.Name, Hostname: hostname, Owner: owner, SpecHash: hash,
		Labels: spec.Labels, Restart: spec.Restart, StopSignal: spec.StopSignal, StopTimeout: spec.StopTimeout,
		Image: spec.Image, Created: time.Now().UTC(), Healthcheck: healthcheck(spec, nil),
	}
	mode, err := d.networkMode(ctx, spec, m)
	if err != nil {
		return nil, err
	}
	// Recorded before anything is attached, so a cleanup after a crash
	// knows which networks to detach from.
	if err := writeMeta(dir, m); err != nil {
		return nil, err
	}

	img, err := d.images.Resolve(ctx, spec.Image)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", spec.Image, err)
	}
	// Written with the meta below, before the container starts.
	m.ImageHealthcheck = img.Config.Healthcheck
	m.Healthcheck = healthcheck(spec, m.ImageHealthcheck)
	rootfs := filepath.Join(dir, "rootfs")
	if err := mountOverlay(img.Layers, dir); err != nil {
		return nil, err
	}
	mounts, err := d.userMounts(ctx, spec, rootfs)
	if err != nil {
		return nil, err
	}

	if mode == netBridge {
		m.Netns = d.netnsPath(id)
		if err := createNetNS(m.Netns); err != nil {
			m.Netns = ""
			return nil, err
		}
		if err := writeMeta(dir, m); err != nil {
			return nil, err
		}
		for i := range m.Attachments {
			a := &m.Attachments[i]
			res, err := d.networks.Attach(ctx, a.attachment(id, m.Netns))
			if err != nil {
				return nil, fmt.Errorf("attach to network %s: %w", a.Network, err)
			}
			a.IP = res.IPv4
			if err := writeMeta(dir, m); err != nil {
				return nil, err
			}
		}
	}

	if err := writeEtcFiles(dir, hostname, mode == netHost); err != nil {
		return nil, err
	}
	if err := d.refreshHosts(m.networkNames(), id); err != nil {
		return nil, err
	}

	cfg, proc, err := buildConfig(buildInput{
		id: id, spec: spec, image: &img.Config, rootfs: rootfs, hostname: hostname,
		mounts: append(mounts, etcMounts(dir, spec.Mounts)...), netns: m.Netns, hostNet: mode == netHost,
		cgroupPath: d.cgroupPath(id),
	})
	if err != nil {
		return nil, err
	}
	m.Command = proc.Args
	if err := d.start(ctx, id, cfg, proc, in); err != nil {
		return nil, err
	}
	m.Started = true
	if err := writeMeta(dir, m); err != nil {
		return nil, err
	}
	return m, nil
}

// networkMode decides the container's namespace from its network blocks
// and lists the bridge attachments in m.
func (d *Driver) networkMode(ctx context.Context, spec *resource.ContainerSpec, m *meta) (string, error) {
	mode := netPrivate
	var host, other []string
	for _, n := range spec.Networks {
		nm, err := d.networks.Mode(ctx, n.Name)
		if err != nil {
			return "", err // the network driver names the network
		}
		switch nm {
		case "host":
			host = append(host, n.Name)
			mode = netHost
		case "none":
		case "bridge":
			other = append(other, n.Name)
			a := attachmentMeta{
				Network: n.Name,
				IfName:  fmt.Sprintf("eth%d", len(m.Attachments)),
				IPv4:    n.IPv4Address,
				Aliases: n.Aliases,
			}
			if len(m.Attachments) == 0 {
				// Published ports go on the first bridge network.
				a.Ports = spec.Ports
			}
			m.Attachments = append(m.Attachments, a)
		default:
			return "", fmt.Errorf("network %s has mode %q, which containers cannot join", n.Name, nm)
		}
	}
	if len(host) > 0 && len(other) > 0 {
		return "", fmt.Errorf("a container on the host network (%s) cannot join other networks (%s)", host[0], other[0])
	}
	if len(host) > 0 {
		m.Attachments = nil
		return netHost, nil
	}
	if len(m.Attachments) > 0 {
		return netBridge, nil
	}
	return mode, nil
}

// start records how to start the init and starts it under a monitor,
// which writes its output to the log and its exit status to exit.json
// whether or not this process lives on.
func (d *Driver) start(ctx context.Context, id string, cfg *configs.Config, proc *libcontainer.Process, in *Interactive) error {
	dir := d.dir(id)
	spec := &startSpec{
		Root: d.stateRoot(), ID: id, Config: cfg, Process: processSpecOf(proc),
		Monitor: d.cfg.Monitor, LogMaxSize: d.cfg.LogMaxSize, LogMaxFiles: d.cfg.LogMaxFiles,
	}
	if err := writeStartSpec(dir, spec); err != nil {
		return err
	}
	return d.spawn(ctx, dir, in)
}

// healthcheck is the check to record: the container's, else its image's
// (as Docker does; image's is nil when the image has none or disables
// it), nil without one.
func healthcheck(spec *resource.ContainerSpec, image *resource.HealthcheckSpec) *resource.HealthcheckSpec {
	if !spec.Healthcheck.Enabled() {
		if image == nil || !image.Enabled() {
			return nil
		}
		h := *image
		h.Command = slices.Clone(h.Command)
		return &h
	}
	h := spec.Healthcheck
	return &h
}
