package driver

import (
	"context"

	"github.com/seed-e88ffcd2/berth/resource"
)

// What the container driver needs of the other drivers. The image, network
// and volume drivers implement these; the agent wires them together.

// ImageConfig is the part of an OCI image config a container starts from.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=value
	WorkingDir string
	User       string
	Labels     map[string]string
	// Healthcheck is the image's HEALTHCHECK, which a container that sets
	// no health check of its own runs; nil when the image has none or
	// disables it (HEALTHCHECK NONE).
	Healthcheck *resource.HealthcheckSpec
}

// ImageInfo is a resolved image: its layers unpacked on disk and its config.
type ImageInfo struct {
	Ref    string
	ID     string
	Layers []string // unpacked layer directories, lowest first
	Config ImageConfig
}

// Images resolves an image reference (as an image's ref attribute gives it)
// to its unpacked layers. Unknown references wrap resource.ErrNotFound.
type Images interface {
	Resolve(ctx context.Context, ref string) (*ImageInfo, error)
}

// Attachment is one container joined to one network.
type Attachment struct {
	Network     string // network name
	ContainerID string
	NetNS       string // path of the container's network namespace
	IfName      string // interface inside the container: eth0, eth1, ...
	Ports       []resource.PortSpec
	IPv4        string // static address, or "" to allocate one
}

// AttachResult is what the network gave the container.
type AttachResult struct {
	IPv4    string // address without prefix length
	Gateway string
}

// Networks attaches containers to networks by name. Mode tells the
// container driver how to build the container's network namespace:
// "bridge" (attach), "host" (share the host's), "none" (loopback only).
// Unknown networks wrap resource.ErrNotFound.
type Networks interface {
	Mode(ctx context.Context, network string) (string, error)
	Attach(ctx context.Context, a Attachment) (AttachResult, error)
	// Detach must run while the namespace still exists; detaching what is
	// not attached succeeds.
	Detach(ctx context.Context, a Attachment) error
}

// Volumes locates a volume's directory by name. Unknown volumes wrap
// resource.ErrNotFound.
type Volumes interface {
	Path(ctx context.Context, name string) (string, error)
}

// PortChecker is an optional capability of Networks: before anything is
// built, it says whether the host ports a container publishes are free —
// not published by another container, not held by a process on the host.
// Conflicts wrap resource.ErrConflict.
type PortChecker interface {
	CheckPorts(ctx context.Context, containerID string, ports []resource.PortSpec) error
}
