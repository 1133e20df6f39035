package container

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
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
func (d *Driver) create(ctx context.Context, id string, spec *resource.ContainerSpec, owner, hash string) (*meta, error) {
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
	if err := d.start(id, cfg, proc); err != nil {
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
			return "", fmt.Errorf("network %s: %w", n.Name, err)
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

// start creates the libcontainer container and starts its init with its
// output going straight to the log files, so the container keeps writing
// them when berth exits. A goroutine waits for the init to record its exit
// status while this process lives.
func (d *Driver) start(id string, cfg *configs.Config, proc *libcontainer.Process) error {
	c, err := libcontainer.Create(d.stateRoot(), id, cfg)
	if err != nil {
		return fmt.Errorf("libcontainer: %w", err)
	}
	stdoutPath, stderrPath := d.Logs(id)
	stdout, err := os.OpenFile(stdoutPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(stderrPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	defer stderr.Close()
	proc.Stdout, proc.Stderr = stdout, stderr
	if err := c.Run(proc); err != nil {
		return fmt.Errorf("start: %w", err)
	}

	done := make(chan struct{})
	d.reapMu.Lock()
	d.reapers[id] = done
	d.reapMu.Unlock()
	dir := d.dir(id)
	go func() {
		defer func() {
			d.reapMu.Lock()
			if d.reapers[id] == done {
				delete(d.reapers, id)
			}
			d.reapMu.Unlock()
			close(done)
		}()
		ps, _ := proc.Wait()
		if ps == nil {
			return
		}
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
			// The directory is gone when the container was deleted.
			_ = writeExit(dir, exitFromWait(ws))
		}
	}()
	return nil
}

// exitRecord is how a container's init ended.
type exitRecord struct {
	Code     int       `json:"code"`
	Signal   string    `json:"signal,omitempty"`
	Finished time.Time `json:"finished"`
}

func exitFromWait(ws syscall.WaitStatus) exitRecord {
	e := exitRecord{Code: ws.ExitStatus(), Finished: time.Now().UTC()}
	if ws.Signaled() {
		// The shell's convention, which Docker reports too.
		e.Code = 128 + int(ws.Signal())
		e.Signal = ws.Signal().String()
	}
	return e
}

func (e exitRecord) String() string {
	s := fmt.Sprintf("container exited with status %d", e.Code)
	if e.Signal != "" {
		s += " (" + e.Signal + ")"
	}
	return s
}

func writeExit(dir string, e exitRecord) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "exit.json"), data, 0o644)
}

func readExit(dir string) (exitRecord, error) {
	var e exitRecord
	data, err := os.ReadFile(filepath.Join(dir, "exit.json"))
	if err != nil {
		return e, err
	}
	return e, json.Unmarshal(data, &e)
}
