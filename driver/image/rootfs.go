package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
	"github.com/seed-e88ffcd2/berth/resource"
)

// tarFormat names the way a directory is turned into a layer. Changing
// what tarDir writes must change it, so cached digests of the old way are
// not reused.
const tarFormat = "berth-rootfs-tar-1"

// epoch is the time written into rootfs layers and configs: a fixed time,
// so that an image depends on the content of its directory only.
var epoch = time.Unix(0, 0).UTC()

// importRootfs makes the image of a directory, like docker import: the
// directory is its only layer, the spec gives its config.
func (s *Store) importRootfs(spec *resource.ImageSpec) (*storedImage, error) {
	dir, err := filepath.Abs(spec.Rootfs)
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return nil, sourceError("rootfs", spec.Rootfs, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, sourceError("rootfs", spec.Rootfs, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("rootfs %q is not a directory; point rootfs at the directory that becomes the image's root, or use archive for a tar", spec.Rootfs)
	}
	layer, err := s.rootfsLayer(dir)
	if err != nil {
		return nil, fmt.Errorf("rootfs %q: %w", spec.Rootfs, err)
	}

	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	cfg := v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{layer.Digest}},
		Config: v1.Config{
			Cmd:        spec.Command,
			Entrypoint: spec.Entrypoint,
			Env:        env,
			WorkingDir: spec.WorkingDir,
			User:       spec.User,
		},
		History: []v1.History{{Created: v1.Time{Time: epoch}, CreatedBy: "berth rootfs"}},
	}
	if len(spec.Labels) > 0 {
		cfg.Config.Labels = spec.Labels
	}
	if len(cfg.Config.Cmd) == 0 {
		cfg.Config.Cmd = nil
	}
	if len(cfg.Config.Entrypoint) == 0 {
		cfg.Config.Entrypoint = nil
	}
	if len(cfg.Config.Env) == 0 {
		cfg.Config.Env = nil
	}
	cfgDigest, cfgRaw, err := s.putJSON(cfg)
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfgRaw)), Digest: cfgDigest},
		Layers:        []v1.Descriptor{layer},
	}
	digest, _, err := s.putJSON(m)
	if err != nil {
		return nil, err
	}
	return s.loadImage(digest)
}

// rootfsCache is a cache entry: a directory's fingerprint → its layer.
type rootfsCache struct {
	Format string  `json:"format"`
	Digest v1.Hash `json:"digest"`
	Size   int64   `json:"size"`
}

// rootfsLayer returns the layer of a directory, tarring it only if its
// fingerprint is not in the cache or the cached blob is gone. The layer is
// stored uncompressed: its digest is then its diff ID, and the same tree
// gives the same digest whatever compressor a Go release ships.
func (s *Store) rootfsLayer(dir string) (v1.Descriptor, error) {
	before, err := fingerprint(dir)
	if err != nil {
		return v1.Descriptor{}, err
	}
	key := cacheKey("rootfs", dir, before)
	var c rootfsCache
	if s.readCache(key, &c) && c.Format == tarFormat {
		if fi, err := os.Stat(s.blobPath(c.Digest)); err == nil && fi.Size() == c.Size {
			return v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: c.Size, Digest: c.Digest}, nil
		}
	}

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, dir)) }()
	digest, size, err := s.putBlob(pr, v1.Hash{})
	pr.CloseWithError(err)
	if err != nil {
		return v1.Descriptor{}, err
	}
	// A directory that changed while it was read gave a layer that matches
	// neither state; it is used, but not cached under either fingerprint.
	if after, err := fingerprint(dir); err == nil && after == before {
		s.writeCache(key, rootfsCache{Format: tarFormat, Digest: digest, Size: size})
	}
	return v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: size, Digest: digest}, nil
}

// fingerprint summarises the metadata of every entry under dir: path,
// type and mode, owner, size, mtime, ctime and inode. Any edit changes
// mtime or ctime, so an equal fingerprint means an unchanged tree, found by
// one lstat per entry instead of reading the content.
func fingerprint(dir string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", tarFormat)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s\x00%o %d:%d %d %d.%d %d.%d %d %d %d\n", rel, st.Mode, st.Uid, st.Gid, st.Size,
			st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, st.Ino, st.Nlink, st.Rdev)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tarDir writes dir as a layer tar in a reproducible way: entries in
// lexical order, times set to the epoch, owners as numbers without names,
// hard links as links to the first name, symlinks as they are. Device
// nodes and sockets are left out: a container's /dev comes from the
// runtime, and the unpacker would refuse them anyway. The only extended
// attribute kept is security.capability, which binaries such as ping need.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	links := map[inode]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			// The root's own mode and owner are the store's business,
			// not the image's: a 0700 build directory must not make
			// the container's / unreadable.
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, path)
		hdr := &tar.Header{
			Name:    filepath.ToSlash(rel),
			Mode:    int64(st.Mode & 0o7777),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: epoch,
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		default:
			if ok, err := fileHeader(hdr, path, st, links); err != nil || !ok {
				return err
			}
		}
		return writeEntry(tw, hdr, path)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// getCapability returns a file's security.capability attribute.
func getCapability(path string) (string, bool) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(path, "security.capability", buf)
	if err != nil || n <= 0 {
		return "", false
	}
	return string(buf[:n]), true
}

// cacheKey names a cache entry: a hash of what identifies a source.
func cacheKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readCache loads a cache entry; a missing or unreadable one is a miss.
func (s *Store) readCache(key string, v any) bool {
	b, err := os.ReadFile(filepath.Join(s.cacheDir(), key+".json"))
	if err != nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

// writeCache stores a cache entry. Failing to is not an error: the cache
// only saves time.
func (s *Store) writeCache(key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	_ = atomicfile.WriteFile(filepath.Join(s.cacheDir(), key+".json"), b, 0o644)
}

// sourceError explains a source that cannot be read: which attribute, which
// path, and what to do.
func sourceError(attr, path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		hint := "create the directory or fix the path"
		if attr == "archive" {
			hint = `create it (docker save -o FILE IMAGE, or an OCI layout tar) or fix the path`
		}
		return fmt.Errorf("%s %q does not exist; %s: %w", attr, path, hint, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s %q cannot be read; give the agent read access to it: %w", attr, path, err)
	}
	return fmt.Errorf("%s %q: %w", attr, path, err)
}

// inode names a file for good, to write its other names as hard links.
type inode struct{ dev, ino uint64 }

// fileHeader completes hdr for what is not a directory: a symbolic link, a
// FIFO, or a regular file (a hard link to one already written when it has
// several names, its file capability kept). ok false means the file is
// left out (a socket or a device is not data).
func fileHeader(hdr *tar.Header, path string, st *syscall.Stat_t, links map[inode]string) (ok bool, err error) {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = os.Readlink(path); err != nil {
			return false, err
		}
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		if st.Nlink > 1 {
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := links[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				return true, nil
			}
			links[key] = hdr.Name
		}
		hdr.Size = st.Size
		if capability, ok := getCapability(path); ok {
			hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": capability}
		}
	default:
		return false, nil
	}
	return true, nil
}

// writeEntry writes hdr and, for a regular file, the content of path.
func writeEntry(tw *tar.Writer, hdr *tar.Header, path string) error {
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("%s: %w (did it change while it was read?)", path, err)
	}
	return nil
}
