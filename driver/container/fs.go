package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seed-e88ffcd2/berth/resource"
	"golang.org/x/sys/unix"
)

// mountOverlay mounts the container's root filesystem at dir/rootfs: the
// image layers read-only below, dir/upper for the container's writes.
func mountOverlay(layers []string, dir string) error {
	lower := make([]string, 0, len(layers))
	// overlayfs wants the top-most layer first; images list the lowest
	// first.
	for i := len(layers) - 1; i >= 0; i-- {
		if strings.ContainsAny(layers[i], ":,") {
			return fmt.Errorf("image layer path %q contains ':' or ',', which overlayfs cannot take", layers[i])
		}
		lower = append(lower, layers[i])
	}
	if len(lower) == 0 {
		// An image without layers still needs a lower directory.
		empty := filepath.Join(dir, "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return err
		}
		lower = append(lower, empty)
	}
	// The merged root directory takes its owner and mode from the upper
	// directory, which must therefore look like the image's root.
	var st unix.Stat_t
	if err := unix.Stat(lower[0], &st); err != nil {
		return fmt.Errorf("image layer: %w", err)
	}
	upper := filepath.Join(dir, "upper")
	if err := unix.Chown(upper, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(upper, st.Mode&0o7777); err != nil {
		return err
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
		strings.Join(lower, ":"), upper, filepath.Join(dir, "work"))
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("image has too many layers (%d) for one overlay mount", len(layers))
	}
	if err := unix.Mount("overlay", filepath.Join(dir, "rootfs"), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount root filesystem: %w", err)
	}
	return nil
}

// unmount unmounts path if something is mounted there.
func unmount(path string) error {
	for {
		err := unix.Unmount(path, 0)
		switch {
		case err == nil:
			continue // mounts may be stacked
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil // not (or no longer) a mountpoint
		case errors.Is(err, unix.EBUSY):
			// Still in use by a process that outlived its container;
			// detach it so the directory can go now.
			return unix.Unmount(path, unix.MNT_DETACH)
		default:
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
}

// userMounts turns the container's mount blocks into OCI mounts, parents
// before children, filling empty volumes from the image on the way.
func (d *Driver) userMounts(ctx context.Context, spec *resource.ContainerSpec, rootfs string) ([]specs.Mount, error) {
	ms := slices.Clone(spec.Mounts)
	slices.SortStableFunc(ms, func(a, b resource.MountSpec) int {
		return depth(a.Target) - depth(b.Target)
	})
	var out []specs.Mount
	for _, m := range ms {
		opts := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		switch {
		case m.Volume != "":
			src, err := d.volumes.Path(ctx, m.Volume)
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", m.Volume, err)
			}
			if err := fillVolume(src, rootfs, m.Target); err != nil {
				return nil, fmt.Errorf("fill volume %s from the image: %w", m.Volume, err)
			}
			out = append(out, specs.Mount{Destination: m.Target, Type: "bind", Source: src, Options: opts})
		case m.Bind != "":
			if _, err := os.Stat(m.Bind); err != nil {
				return nil, fmt.Errorf("bind mount source %s: %w", m.Bind, resource.ErrNotFound)
			}
			out = append(out, specs.Mount{Destination: m.Target, Type: "bind", Source: m.Bind, Options: opts})
		case m.Tmpfs:
			topts := []string{"nosuid", "nodev", "mode=1777"}
			if m.TmpfsSize != "" {
				n, err := resource.ParseMemory(m.TmpfsSize)
				if err != nil {
					return nil, err
				}
				topts = append(topts, fmt.Sprintf("size=%d", n))
			}
			if m.ReadOnly {
				topts = append(topts, "ro")
			}
			out = append(out, specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: topts})
		default:
			return nil, fmt.Errorf("mount at %s has no source", m.Target)
		}
	}
	return out, nil
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// fillVolume copies what the image holds at target into the volume when
// the volume is empty, as Docker does on a volume's first mount, so an
// image's initial data (a database's empty cluster, a web root) appears.
// The volume root takes the owner and mode of the image's directory.
func fillVolume(vol, rootfs, target string) error {
	entries, err := os.ReadDir(vol)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return nil
	}
	src, err := securejoin.SecureJoin(rootfs, target)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
		return nil
	} else if err != nil {
		return err
	}
	return copyTree(src, vol)
}

// copyTree copies the tree at src into the existing directory dst,
// keeping modes, owners, times, symlinks and device nodes.
func copyTree(src, dst string) error {
	type dirTimes struct {
		path string
		st   *unix.Stat_t
	}
	var dirs []dirTimes
	err := filepath.WalkDir(src, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if rel != "." {
				if err := os.Mkdir(target, 0o700); err != nil {
					return err
				}
			}
			dirs = append(dirs, dirTimes{target, &st})
		case unix.S_IFREG:
			if err := copyFile(path, target); err != nil {
				return err
			}
		case unix.S_IFLNK:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		default:
			return nil // sockets are not data
		}
		return setAttrs(target, &st)
	})
	if err != nil {
		return err
	}
	// Directory times last: creating their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		ts := []unix.Timespec{dirs[i].st.Atim, dirs[i].st.Mtim}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// setAttrs gives path the owner, mode (setuid and sticky bits included)
// and times of st.
func setAttrs(path string, st *unix.Stat_t) error {
	if err := unix.Lchown(path, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// After chown, which clears setuid bits.
		if err := unix.Chmod(path, st.Mode&0o7777); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// cgroupRoot is where the cgroup filesystems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// removeCgroup removes the container's cgroup in every hierarchy, for a
// container that libcontainer no longer knows (a create that crashed
// between making the cgroup and saving its state). Destroy handles the
// normal case.
func removeCgroup(path string) error {
	candidates := []string{filepath.Join(cgroupRoot, path)}
	if entries, err := os.ReadDir(cgroupRoot); err == nil {
		for _, e := range entries {
			candidates = append(candidates, filepath.Join(cgroupRoot, e.Name(), path))
		}
	}
	var errs []error
	for _, c := range candidates {
		if err := unix.Rmdir(c); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", c, err))
		}
	}
	return errors.Join(errs...)
}

// oomKilled tells whether the kernel's OOM killer killed a process of the
// container, from the memory cgroup's counters (v2 memory.events, v1
// memory.oom_control). libcontainer reports an OOM kill only as exit 137.
func oomKilled(paths map[string]string) bool {
	files := map[string]string{"": "memory.events", "memory": "memory.oom_control"}
	for key, file := range files {
		dir := paths[key]
		if dir == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && k == "oom_kill" && v != "0" {
				return true
			}
		}
	}
	return false
}
