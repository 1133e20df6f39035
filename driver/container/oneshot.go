package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/resource"
)

// A one-shot container is what a Dockerfile's RUN needs: one process, run
// to its end in a root filesystem made of given layers and an upper
// directory the caller keeps afterwards. It is made by the same
// buildConfig as every container (namespaces, capabilities, Docker's
// seccomp profile, cgroup under the same parent, masked paths), so a build
// step is exactly as isolated as a container; what differs is only what a
// long-lived container needs and a build step does not: no monitor, no
// name, no record, no network attachments. The process is this process's
// child and its output goes to the caller's writers.

// OneShot describes a one-shot container.
type OneShot struct {
	// Dir is an empty directory the container is made in: Dir/upper
	// receives the process's writes (overlayfs's format: whiteouts are 0:0
	// character devices, opaque directories carry trusted.overlay.opaque),
	// and stays; everything else RunOneShot makes there it removes.
	Dir string
	// Layers are the unpacked layer directories of the root filesystem,
	// lowest first.
	Layers []string
	// Image is the configuration the process runs under: Env, WorkingDir
	// and User. Entrypoint and Cmd are ignored: Args is the whole argv.
	Image driver.ImageConfig
	Args  []string
	// Env is added to Image.Env (a build's ARG values), overriding it.
	Env map[string]string
	// Network is "none" (a namespace of its own with only loopback, the
	// default) or "host".
	Network string
	// Hostname defaults to the container's generated id.
	Hostname string
	// Stdout and Stderr receive the output; nil discards it.
	Stdout, Stderr io.Writer
}

// RunOneShot runs o's process to its end and returns its exit code (128+N
// for a process killed by signal N). Cancelling ctx kills it. Whatever
// happens, the container, its cgroup and its mounts are gone when
// RunOneShot returns; Dir/upper is left for the caller.
func (d *Driver) RunOneShot(ctx context.Context, o OneShot) (code int, err error) {
	if len(o.Args) == 0 {
		return -1, resource.Errorf(resource.ErrInvalid, "a one-shot container needs a command")
	}
	hostNet := false
	switch o.Network {
	case "", "none", "default":
	case "host":
		hostNet = true
	default:
		return -1, resource.Errorf(resource.ErrInvalid, "network %q: a one-shot container takes none or host", o.Network)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return -1, err
	}
	id := "berth-oneshot-" + hex.EncodeToString(rnd[:])
	hostname := o.Hostname
	if hostname == "" {
		hostname = id
	}
	dir := o.Dir
	for _, sub := range []string{"upper", "work", "rootfs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return -1, err
		}
	}
	rootfs := filepath.Join(dir, "rootfs")
	defer func() {
		if cerr := d.oneShotCleanup(id, dir); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := mountOverlay(o.Layers, dir); err != nil {
		return -1, err
	}
	if err := writeEtcFiles(dir, hostname, hostNet); err != nil {
		return -1, err
	}
	if err := writeInPlace(filepath.Join(dir, "hosts"), hostsFile(&meta{Hostname: hostname}, nil)); err != nil {
		return -1, err
	}
	spec := &resource.ContainerSpec{Name: id, Entrypoint: o.Args[:1], Command: o.Args[1:], Env: o.Env}
	img := o.Image
	img.Entrypoint, img.Cmd = nil, nil
	cfg, proc, err := buildConfig(buildInput{
		id: id, spec: spec, image: &img, rootfs: rootfs, hostname: hostname,
		mounts: etcMounts(dir, nil), hostNet: hostNet, cgroupPath: d.cgroupPath(id),
	})
	if err != nil {
		return -1, err
	}
	c, err := libcontainer.Create(d.stateRoot(), id, cfg)
	if err != nil {
		return -1, fmt.Errorf("libcontainer: %w", err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return -1, err
	}
	defer devnull.Close()
	proc.Stdin = devnull
	proc.Stdout, proc.Stderr = orDiscard(o.Stdout), orDiscard(o.Stderr)
	if err := c.Run(proc); err != nil {
		return -1, fmt.Errorf("start: %w", err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = c.Signal(unix.SIGKILL)
		case <-done:
		}
	}()
	ps, err := proc.Wait()
	if ps == nil {
		return -1, err
	}
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ps.ExitCode(), nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// oneShotCleanup removes the libcontainer container (killing what is left
// of it, such as a daemon the process started), its cgroup, the root
// filesystem mount and everything in dir but upper.
func (d *Driver) oneShotCleanup(id, dir string) error {
	var errs []error
	if c, err := libcontainer.Load(d.stateRoot(), id); err == nil {
		if running(c) {
			_ = c.Signal(unix.SIGKILL)
			waitStopped(context.Background(), c, 10*time.Second)
		}
		if err := c.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("destroy: %w", err))
		}
	} else if !errors.Is(err, libcontainer.ErrNotExist) {
		errs = append(errs, fmt.Errorf("load: %w", err))
	}
	if err := os.RemoveAll(filepath.Join(d.stateRoot(), id)); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroup(d.cgroupPath(id)); err != nil {
		errs = append(errs, err)
	}
	if err := unmount(filepath.Join(dir, "rootfs")); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		for _, name := range []string{"rootfs", "work", "empty", "hosts", "hostname", "resolv.conf"} {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				errs = append(errs, err)
			}
		}
		d.pruneCgroupParent()
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove one-shot container %s: %w", id, errors.Join(errs...))
	}
	return nil
}

// MountLayers mounts at Dir/rootfs the root filesystem a one-shot
// container would get, for a builder that changes files without running
// a process (COPY, ADD) or reads another stage's files: the layers below,
// Dir/upper receiving the writes. release removes the mount and the work
// directory and leaves Dir/upper.
func MountLayers(layers []string, dir string) (rootfs string, release func() error, err error) {
	for _, sub := range []string{"upper", "work", "rootfs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return "", nil, err
		}
	}
	rootfs = filepath.Join(dir, "rootfs")
	release = func() error {
		if err := unmount(rootfs); err != nil {
			return err
		}
		for _, name := range []string{"rootfs", "work", "empty"} {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := mountOverlay(layers, dir); err != nil {
		_ = release()
		return "", nil, err
	}
	return rootfs, release, nil
}
