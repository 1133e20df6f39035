// Package agent assembles a berth host: the state store and the concrete
// drivers wired to each other (the container driver uses the image store,
// the networks and the volumes). It is the one place where concrete drivers
// are chosen; everything else sees interfaces.
//
// It is also the daemon (Serve: the host held by one process, the API on a
// unix socket with agent/api, the supervisor of agent/supervise) and the
// Runtime the CLI's verbs use, on the host itself or over the API. Without
// a running agent the CLI opens a Host in-process (OpenLocal).
package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/seed-e88ffcd2/berth/agent/supervise"
	"github.com/seed-e88ffcd2/berth/build"
	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/driver/image"
	"github.com/seed-e88ffcd2/berth/driver/network"
	"github.com/seed-e88ffcd2/berth/driver/volume"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/seed-e88ffcd2/berth/state"
	"github.com/zclconf/go-cty/cty"
)

// Config says where a host keeps its things.
type Config struct {
	// StateDir holds the state store, images, volumes, container
	// directories and network configuration ($BERTH_STATE_DIR).
	StateDir string
	// RunDir holds runtime state that does not survive a reboot:
	// libcontainer state and network namespaces ($BERTH_RUN_DIR).
	RunDir string
	// CNIPath lists directories searched for CNI plugins
	// ($BERTH_CNI_PATH, colon-separated).
	CNIPath []string
	// CgroupParent is the cgroup under which containers are placed.
	CgroupParent string
	// InsecureRegistries may be pulled from and pushed to over plain HTTP
	// besides loopback ones ($BERTH_INSECURE_REGISTRIES: host or host:port,
	// comma-separated).
	InsecureRegistries []string
	// Monitor is the berth-monitor binary every container runs under
	// ($BERTH_MONITOR; by default next to the berth binary, then on PATH).
	Monitor string
	// Socket is the agent's API socket ($BERTH_SOCKET, default
	// RunDir/berth.sock).
	Socket string
}

// DefaultConfig is the configuration of a host: the places of DESIGN.md,
// each overridable by its BERTH_* environment variable so that tests run
// many hosts side by side.
func DefaultConfig() Config {
	cfg := Config{
		StateDir:     envOr("BERTH_STATE_DIR", "/var/lib/berth"),
		RunDir:       envOr("BERTH_RUN_DIR", "/run/berth"),
		CgroupParent: envOr("BERTH_CGROUP_PARENT", "/berth"),
	}
	cfg.Socket = envOr("BERTH_SOCKET", filepath.Join(cfg.RunDir, "berth.sock"))
	cfg.InsecureRegistries = strings.FieldsFunc(os.Getenv("BERTH_INSECURE_REGISTRIES"), func(r rune) bool { return r == ',' || r == ' ' })
	if p := os.Getenv("BERTH_CNI_PATH"); p != "" {
		cfg.CNIPath = strings.Split(p, ":")
	} else {
		// Next to the binary first: `make` builds bin/berth and bin/cni.
		if exe, err := os.Executable(); err == nil {
			cfg.CNIPath = append(cfg.CNIPath, filepath.Join(filepath.Dir(exe), "cni"))
		}
		cfg.CNIPath = append(cfg.CNIPath, "/usr/lib/berth/cni", "/opt/cni/bin", "/usr/lib/cni")
	}
	cfg.Monitor = findMonitor()
	return cfg
}

// findMonitor looks for berth-monitor where make and installs put it;
// empty when it is nowhere, which fails the first container start with
// advice.
func findMonitor() string {
	if p := os.Getenv("BERTH_MONITOR"); p != "" {
		return p
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "berth-monitor"); isFile(p) {
			return p
		}
	}
	if p, err := exec.LookPath("berth-monitor"); err == nil {
		return p
	}
	return ""
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Init turns this process into a container's init when libcontainer
// re-executed the binary for that, and returns at once otherwise. main
// calls it first, before anything else runs.
func Init() { container.Init() }

// Host is an opened berth host.
type Host struct {
	Store      *state.Store
	Drivers    driver.Set
	containers *container.Driver
	builder    *build.Builder

	// superviseDir holds the supervisor's records, which the verbs read
	// when no agent runs; sup is the agent's supervisor (SetSupervisor).
	superviseDir string
	supMu        sync.Mutex
	sup          *supervise.Supervisor
}

// LogPath is the log of a container's output (internal/logfile).
func (h *Host) LogPath(id string) string { return h.containers.LogPath(id) }

// Open opens the state store and builds the drivers.
func Open(cfg Config) (*Host, error) {
	store, err := state.Open(filepath.Join(cfg.StateDir, "state.db"))
	if err != nil {
		return nil, err
	}
	h, err := drivers(cfg)
	if err != nil {
		store.Close()
		return nil, err
	}
	h.Store = store
	h.superviseDir = supervise.DefaultConfig(cfg.StateDir).Dir
	return h, nil
}

func drivers(cfg Config) (*Host, error) {
	images, err := image.New(imageConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	netCfg := network.DefaultConfig()
	netCfg.StateDir = filepath.Join(cfg.StateDir, "network")
	netCfg.PluginDirs = cfg.CNIPath
	networks, err := network.New(netCfg)
	if err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	volumes, err := volume.New(volume.Config{Root: filepath.Join(cfg.StateDir, "volumes")})
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	ctrCfg := container.DefaultConfig()
	ctrCfg.StateDir = filepath.Join(cfg.StateDir, "containers")
	ctrCfg.RunDir = cfg.RunDir
	ctrCfg.CgroupParent = cfg.CgroupParent
	ctrCfg.Monitor = cfg.Monitor
	containers, err := container.New(ctrCfg, images, networks, volumes)
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	// Images with a build block run their RUN steps as containers.
	builder := build.New(images, containers)
	images.SetBuilder(builder)
	return &Host{
		Drivers: driver.Set{
			resource.KindImage:     images,
			resource.KindNetwork:   networks,
			resource.KindVolume:    volumes,
			resource.KindContainer: containers,
		},
		containers: containers,
		builder:    builder,
	}, nil
}

// Close releases the state store.
func (h *Host) Close() error { return h.Store.Close() }

// Observe looks at every recorded object on the host, in parallel: the
// refresh that turns what happened behind berth's back into drift.
func (h *Host) Observe(ctx context.Context, project string, objects map[resource.Addr]*resource.Object) (map[resource.Addr]resource.Observation, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		sem  = make(chan struct{}, 10)
	)
	out := map[resource.Addr]resource.Observation{}
	for addr, obj := range objects {
		d := h.Drivers[addr.Kind]
		if d == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			obs, err := d.Observe(resource.WithOwner(ctx, resource.Owner{Project: project, Addr: addr}), addr, obj.Value)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("observing %s: %w", addr, err))
				return
			}
			out[addr] = obs
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// Preview asks the kind's driver, if it can, to fill in what is known
// before apply and to check the desired value against the host.
func (h *Host) Preview(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error) {
	if p, ok := h.Drivers[addr.Kind].(driver.Previewer); ok {
		return p.Preview(ctx, addr, prior, desired)
	}
	return desired, nil
}
