package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// ensureLayers unpacks every layer of an image that is not unpacked yet and
// returns the layer directories, lowest first.
func (s *Store) ensureLayers(img *storedImage) ([]string, error) {
	dirs := make([]string, len(img.Manifest.Layers))
	for i, l := range img.Manifest.Layers {
		diffID := img.Config.RootFS.DiffIDs[i]
		if err := checkHash(diffID); err != nil {
			return nil, fmt.Errorf("layer %d: diff ID: %w", i, err)
		}
		dirs[i] = s.layerPath(diffID)
		if _, err := os.Stat(dirs[i]); err == nil {
			continue
		}
		_, err, _ := s.unpacking.Do(diffID.Hex, func() (any, error) {
			if _, err := os.Stat(dirs[i]); err == nil {
				return nil, nil
			}
			return nil, s.unpackLayer(l, diffID)
		})
		if err != nil {
			return nil, fmt.Errorf("unpack layer %s: %w", diffID, err)
		}
	}
	return dirs, nil
}

// unpackLayer unpacks a layer blob into a temporary directory, checks that
// its content has the diff ID the config promises, and renames it into
// place: a layer directory under its diff ID is always whole.
func (s *Store) unpackLayer(l v1.Descriptor, diffID v1.Hash) error {
	tmp, err := s.unpackBlob(s.blobPath(l.Digest), l.MediaType, diffID)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Rename(tmp, s.layerPath(diffID)); err != nil {
		// Another process unpacked the same layer first.
		if _, serr := os.Stat(s.layerPath(diffID)); serr == nil {
			return nil
		}
		return err
	}
	keep = true
	return nil
}

// unpackBlob unpacks the layer blob at path into a new directory under
// tmp/ and checks that its content has the diff ID the config promises.
// The caller renames the directory into place or removes it.
func (s *Store) unpackBlob(path string, mt types.MediaType, diffID v1.Hash) (dir string, err error) {
	comp, err := layerCompression(mt)
	if err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<16)
	if comp == gzipped {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return "", err
		}
		defer zr.Close()
		r = zr
	}
	tmp, err := os.MkdirTemp(s.tmpDir(), "layer-")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	h := sha256.New()
	tee := io.TeeReader(r, h)
	if err := extractLayer(tee, tmp); err != nil {
		return "", err
	}
	// The tar may be followed by padding the tar reader did not need;
	// it is part of what the diff ID covers.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return "", err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
		return "", fmt.Errorf("content has diff ID sha256:%s, the image config says %s", got, diffID)
	}
	return tmp, nil
}

// Whiteout names of the OCI layer format, turned into what overlayfs reads.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	// Other ".wh..wh." names are aufs bookkeeping with no meaning here.
	whiteoutMeta = ".wh..wh."
)

// extractLayer unpacks a layer tar into dir, which must be empty and
// private to the caller. It is the security boundary between an image and
// the host, so it trusts no entry:
//
//   - names and hard link targets are cleaned and must stay inside dir:
//     absolute names and names reaching out with ".." are refused;
//   - every path is walked one component at a time with openat and
//     O_NOFOLLOW, so no symlink, whether the layer planted it or not, is
//     followed when creating an entry or its parents;
//   - hard links are made with linkat without following, to entries
//     already inside dir;
//   - device nodes are not created, except the 0:0 character device that
//     is itself an overlay whiteout;
//   - extended attributes in the trusted namespace, where overlayfs keeps
//     its own, are not taken from the layer.
//
// Whiteouts become overlayfs whiteouts: ".wh.NAME" a 0:0 character device
// NAME, ".wh..wh..opq" the attribute trusted.overlay.opaque=y on its
// directory. Modes, owners, symlinks and modification times are kept.
func extractLayer(r io.Reader, dir string) error {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	x := &extractor{root: root}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := x.entry(hdr, tr); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	// Directory times last: creating entries inside changed them.
	for i := len(x.dirTimes) - 1; i >= 0; i-- {
		d := x.dirTimes[i]
		if err := x.setTimes(d.rel, d.mtime); err != nil {
			return fmt.Errorf("entry %q: %w", d.rel, err)
		}
	}
	return nil
}

type extractor struct {
	root     int
	dirTimes []dirTime
}

type dirTime struct {
	rel   string
	mtime time.Time
}

// cleanEntry turns an entry name into a relative slash path inside the
// layer, "" for the layer's root, or refuses it.
func cleanEntry(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute path %q in a layer", name)
	}
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("path %q leaves the layer", name)
	}
	if p == "." {
		return "", nil
	}
	return p, nil
}

// openDir opens the directory at rel (a cleaned relative path, "" for the
// root) without following any symlink, creating missing directories on
// the way when create is set. The caller closes the descriptor.
func (x *extractor) openDir(rel string, create bool) (int, error) {
	fd, err := unix.Dup(x.root)
	if err != nil {
		return -1, err
	}
	if rel == "" {
		return fd, nil
	}
	for _, name := range strings.Split(rel, "/") {
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, name, 0o755); err == nil {
				next, err = unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
			if err == nil {
				// Whatever the umask, an implied parent is as open
				// as the directories docker creates for it.
				err = unix.Fchmod(next, 0o755)
			}
		}
		unix.Close(fd)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("%q is not a directory of the layer (a symlink or a file); refusing to go through it", rel)
		}
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// removeExisting clears the way for a new entry, unless both the old and
// the new are directories, which merge as tar extraction always has.
func removeExisting(dirfd int, name string, newIsDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(dirfd, name, 0)
	}
	if newIsDir {
		return nil
	}
	return removeTree(dirfd, name)
}

// removeTree removes a directory and its content relative to dirfd,
// without following symlinks.
func removeTree(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	names, err := d.Readdirnames(-1)
	if err != nil {
		d.Close()
		return err
	}
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			d.Close()
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = removeTree(fd, n)
		} else {
			err = unix.Unlinkat(fd, n, 0)
		}
		if err != nil {
			d.Close()
			return err
		}
	}
	d.Close()
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanEntry(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		// The layer's root directory: only its metadata applies.
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("the layer root is not a directory")
		}
		if err := x.setOwnerMode(x.root, hdr); err != nil {
			return err
		}
		x.dirTimes = append(x.dirTimes, dirTime{"", hdr.ModTime})
		return nil
	}
	parent, base := path.Split(rel)
	parent = strings.TrimSuffix(parent, "/")
	dirfd, err := x.openDir(parent, true)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)

	if strings.HasPrefix(base, whiteoutPrefix) {
		switch {
		case base == whiteoutOpaque:
			return unix.Fsetxattr(dirfd, "trusted.overlay.opaque", []byte("y"), 0)
		case strings.HasPrefix(base, whiteoutMeta):
			return nil
		}
		hidden := strings.TrimPrefix(base, whiteoutPrefix)
		if hidden == "" || hidden == "." || hidden == ".." {
			return fmt.Errorf("whiteout of %q", hidden)
		}
		if err := removeExisting(dirfd, hidden, false); err != nil {
			return err
		}
		return unix.Mknodat(dirfd, hidden, unix.S_IFCHR, 0)
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := removeExisting(dirfd, base, true); err != nil {
			return err
		}
		if err := unix.Mkdirat(dirfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := x.setOwnerMode(fd, hdr); err != nil {
			return err
		}
		if err := setXattrs(fd, hdr); err != nil {
			return err
		}
		x.dirTimes = append(x.dirTimes, dirTime{rel, hdr.ModTime})
		return nil

	case tar.TypeReg:
		if err := removeExisting(dirfd, base, false); err != nil {
			return err
		}
		fd, err := unix.Openat(dirfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), base)
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			return err
		}
		if err := x.setOwnerMode(fd, hdr); err != nil {
			return err
		}
		if err := setXattrs(fd, hdr); err != nil {
			return err
		}
		return unix.UtimesNanoAt(dirfd, base, timespecs(hdr.ModTime), unix.AT_SYMLINK_NOFOLLOW)

	case tar.TypeSymlink:
		// The target is stored as written; it is only ever resolved
		// inside the container's root, never by the store.
		if err := removeExisting(dirfd, base, false); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, dirfd, base); err != nil {
			return err
		}
		if err := unix.Fchownat(dirfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		return unix.UtimesNanoAt(dirfd, base, timespecs(hdr.ModTime), unix.AT_SYMLINK_NOFOLLOW)

	case tar.TypeLink:
		target, err := cleanEntry(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link: %w", err)
		}
		if target == "" {
			return errors.New("hard link to the layer root")
		}
		tparent, tbase := path.Split(target)
		tdirfd, err := x.openDir(strings.TrimSuffix(tparent, "/"), false)
		if err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		defer unix.Close(tdirfd)
		if err := removeExisting(dirfd, base, false); err != nil {
			return err
		}
		// Flags 0: a symlink target is linked itself, not followed.
		if err := unix.Linkat(tdirfd, tbase, dirfd, base, 0); err != nil {
			return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
		}
		return nil

	case tar.TypeChar, tar.TypeBlock:
		if hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0 {
			if err := removeExisting(dirfd, base, false); err != nil {
				return err
			}
			return unix.Mknodat(dirfd, base, unix.S_IFCHR, 0)
		}
		// A device node in an image would give a container whatever
		// device it names; the runtime provides /dev instead.
		return nil

	case tar.TypeFifo:
		if err := removeExisting(dirfd, base, false); err != nil {
			return err
		}
		if err := unix.Mknodat(dirfd, base, unix.S_IFIFO|uint32(hdr.Mode&0o7777), 0); err != nil {
			return err
		}
		if err := unix.Fchownat(dirfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		return unix.UtimesNanoAt(dirfd, base, timespecs(hdr.ModTime), unix.AT_SYMLINK_NOFOLLOW)
	}
	// Other entry types (sockets cannot be in a tar; GNU extensions the
	// reader already folded in) carry nothing to unpack.
	return nil
}

// setOwnerMode applies owner then mode: chown clears set-id bits, so the
// order matters for setuid binaries.
func (x *extractor) setOwnerMode(fd int, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	return unix.Fchmod(fd, uint32(hdr.Mode&0o7777))
}

func (x *extractor) setTimes(rel string, mtime time.Time) error {
	if rel == "" {
		return unix.UtimesNanoAt(x.root, ".", timespecs(mtime), unix.AT_SYMLINK_NOFOLLOW)
	}
	parent, base := path.Split(rel)
	dirfd, err := x.openDir(strings.TrimSuffix(parent, "/"), false)
	if err != nil {
		// A later entry replaced a parent with a file or link: the
		// directory is gone, and so is the time it needed.
		return nil
	}
	defer unix.Close(dirfd)
	err = unix.UtimesNanoAt(dirfd, base, timespecs(mtime), unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func timespecs(mtime time.Time) []unix.Timespec {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	return []unix.Timespec{ts, ts}
}

// setXattrs applies the extended attributes a layer carries in PAX
// records, except the trusted namespace: overlayfs reads its whiteouts
// and redirects from there, and only the whiteout convention may set them.
func setXattrs(fd int, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || strings.HasPrefix(name, "trusted.") {
			continue
		}
		err := unix.Fsetxattr(fd, name, []byte(v), 0)
		if err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}
