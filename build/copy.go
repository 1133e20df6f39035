package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/driver/image"
	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
)

// copySpec is a COPY or ADD after expansion, and what prepareCopy found.
type copySpec struct {
	srcs          []string
	dest          string
	from          string
	chown, chmod  string
	add, unpack   bool
	fromImg       *image.Image // --from: the stage or image copied from
	matches       []string     // context sources: slash paths relative to the context
	fromWildcards bool
}

// prepareCopy resolves a COPY's or ADD's sources and returns what the
// cache key needs of them: for the context, the content of every file
// copied (.dockerignore applied); for another stage or image, its digest.
func (r *run) prepareCopy(ctx context.Context, st *stage, cp *copySpec) (string, error) {
	for _, s := range cp.srcs {
		if strings.Contains(s, "://") || strings.HasPrefix(s, "git@") {
			return "", fmt.Errorf("%s is a URL: berth builds from local files only; download it in a RUN step, or next to the Dockerfile", s)
		}
		if strings.ContainsAny(s, "*?[") {
			cp.fromWildcards = true
		}
	}
	if cp.from != "" {
		if j, ok := r.df.stageIndex(cp.from, st.index); ok {
			cp.fromImg = r.stages[j]
		} else {
			img, err := r.imageRef(ctx, cp.from)
			if err != nil {
				return "", fmt.Errorf("--from=%s names no earlier stage, and: %w", cp.from, err)
			}
			cp.fromImg = img
		}
		return "from=" + cp.fromImg.Digest.String(), nil
	}
	cd, err := r.context()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, s := range cp.srcs {
		m, err := cd.match(s)
		if err != nil {
			return "", err
		}
		for _, rel := range m {
			if err := cd.hashTree(h, rel); err != nil {
				return "", err
			}
		}
		cp.matches = append(cp.matches, m...)
	}
	return "context=" + hex.EncodeToString(h.Sum(nil)), nil
}

// copyStep writes a COPY's or ADD's sources into an overlay of the
// stage's image and stores the change as a layer.
func (r *run) copyStep(st *stage, cp *copySpec, text string) (*image.Image, error) {
	layers, err := r.b.store.LayerDirs(st.img)
	if err != nil {
		return nil, err
	}
	dir, err := r.b.store.TmpDir("copy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rootfs, release, err := container.MountLayers(layers, filepath.Join(dir, "dest"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if release != nil {
			_ = release()
		}
	}()
	srcRoot := ""
	var srcs []string
	if cp.fromImg != nil {
		fromLayers, err := r.b.store.LayerDirs(cp.fromImg)
		if err != nil {
			return nil, err
		}
		root, releaseFrom, err := container.MountLayers(fromLayers, filepath.Join(dir, "from"))
		if err != nil {
			return nil, err
		}
		defer func() { _ = releaseFrom() }()
		srcRoot = root
		for _, s := range cp.srcs {
			m, err := matchIn(root, s, nil)
			if err != nil {
				return nil, err
			}
			srcs = append(srcs, m...)
		}
	} else {
		srcRoot = r.ctx.root
		srcs = cp.matches
	}
	chown, err := chownOf(rootfs, cp.chown)
	if err != nil {
		return nil, err
	}
	own := chown
	if own == nil && cp.fromImg == nil {
		own = &owner{} // context files become root's, as in Docker
	}
	var mode *os.FileMode
	if cp.chmod != "" {
		n, err := strconv.ParseUint(cp.chmod, 8, 32)
		if err != nil || n > 0o7777 {
			return nil, fmt.Errorf("--chmod=%s: want an octal mode such as 755", cp.chmod)
		}
		m := os.FileMode(n)
		mode = &m
	}
	dest := cp.dest
	destIsDir := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		dest = path.Join(orRoot(st.cfg.Config.WorkingDir), dest)
	}
	dest = path.Clean(dest)
	if len(srcs) > 1 || cp.fromWildcards && len(srcs) > 0 {
		if !destIsDir {
			return nil, fmt.Errorf("with more than one source (%d here) the destination must be a directory ending in /: %s/", len(srcs), cp.dest)
		}
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no source files were specified (the patterns %s match nothing)", strings.Join(cp.srcs, ", "))
	}
	if host, err := securejoin.SecureJoin(rootfs, dest); err == nil {
		if fi, err := os.Stat(host); err == nil && fi.IsDir() {
			destIsDir = true
		}
	}
	w := &writer{root: rootfs, own: own, chown: chown, mode: mode}
	for _, rel := range srcs {
		src := filepath.Join(srcRoot, filepath.FromSlash(rel))
		fi, err := os.Lstat(src)
		if err != nil {
			return nil, err
		}
		switch {
		case fi.IsDir():
			if err := w.tree(src, dest, r.ignoreFor(cp, rel)); err != nil {
				return nil, err
			}
		case cp.add && cp.unpack && fi.Mode().IsRegular():
			ok, err := w.unpackArchive(src, dest)
			if err != nil {
				return nil, fmt.Errorf("ADD %s: %w", rel, err)
			}
			if ok {
				continue
			}
			fallthrough
		default:
			target := dest
			if destIsDir {
				target = path.Join(dest, path.Base(rel))
			}
			if err := w.entry(src, fi, target); err != nil {
				return nil, err
			}
		}
	}
	if err := w.finish(); err != nil {
		return nil, err
	}
	err = release()
	release = nil
	if err != nil {
		return nil, err
	}
	layer, err := r.b.store.PutDiff(filepath.Join(dir, "dest", "upper"))
	if err != nil {
		return nil, err
	}
	return r.commit(st, text, layer)
}

// ignoreFor is the filter of a directory copied from the context: the
// .dockerignore rules, with paths relative to the context.
func (r *run) ignoreFor(cp *copySpec, rel string) func(string) bool {
	if cp.fromImg != nil {
		return nil
	}
	return func(sub string) bool { return r.ctx.ignored(path.Join(rel, sub)) }
}

// owner is who copied files belong to.
type owner struct{ uid, gid int }

// chownOf resolves --chown=USER[:GROUP] against the image's /etc/passwd
// and /etc/group; a user without a group takes the same number as its
// group, as Docker documents. Empty: nil.
func chownOf(rootfs, spec string) (*owner, error) {
	if spec == "" {
		return nil, nil
	}
	u, _, hasGroup := strings.Cut(spec, ":")
	passwd, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	eu, err := user.GetExecUserPath(spec, &user.ExecUser{}, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("--chown=%s: %w", spec, err)
	}
	o := &owner{uid: eu.Uid, gid: eu.Gid}
	if !hasGroup {
		if n, err := strconv.Atoi(u); err == nil {
			o.gid = n
		}
	}
	return o, nil
}

// writer writes files into a mounted root filesystem. Every path inside
// it is resolved with securejoin, so a symlink in the image is followed
// as the container would see it and never leads out of the root; nothing
// else runs in that root meanwhile.
type writer struct {
	root string
	own  *owner // nil: keep the source's owner
	// chown is --chown's owner: an archive ADD unpacks keeps its own
	// owners without it.
	chown *owner
	mode  *os.FileMode // nil: keep the source's mode
	dirs  []dirTime
}

type dirTime struct {
	host  string
	mtime time.Time
}

// dir returns the host path of directory rel (slash, absolute inside the
// root), creating it and its missing parents (root-owned, 0755, the last
// one with created's metadata when given).
func (w *writer) dir(rel string, created func(host string) error) (string, error) {
	host, err := securejoin.SecureJoin(w.root, rel)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(host)
	if err == nil && fi.IsDir() {
		return host, nil
	}
	if err == nil {
		if err := os.Remove(host); err != nil {
			return "", err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if rel == "/" || rel == "" {
		return "", errors.New("the root is not a directory")
	}
	parent, err := w.dir(path.Dir(rel), nil)
	if err != nil {
		return "", err
	}
	host = filepath.Join(parent, path.Base(rel))
	if err := os.Mkdir(host, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	if created != nil {
		return host, created(host)
	}
	return host, os.Chmod(host, 0o755)
}

// place returns the host path where entry rel goes, its parent created
// and whatever non-directory was there removed.
func (w *writer) place(rel string) (string, error) {
	parent, err := w.dir(path.Dir(rel), nil)
	if err != nil {
		return "", err
	}
	host := filepath.Join(parent, path.Base(rel))
	fi, err := os.Lstat(host)
	switch {
	case err == nil && fi.IsDir():
		return "", fmt.Errorf("%s is a directory in the image; cannot replace it with a file", rel)
	case err == nil:
		if err := os.Remove(host); err != nil {
			return "", err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	return host, nil
}

func (w *writer) ownerOf(st *syscall.Stat_t) (int, int) {
	if w.own != nil {
		return w.own.uid, w.own.gid
	}
	return int(st.Uid), int(st.Gid)
}

func (w *writer) modeOf(m os.FileMode) uint32 {
	if w.mode != nil {
		return uint32(*w.mode)
	}
	return uint32(m.Perm()) | unixMode(m)
}

// unixMode is the set-id and sticky bits of m in the kernel's encoding.
func unixMode(m os.FileMode) uint32 {
	var out uint32
	if m&os.ModeSetuid != 0 {
		out |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		out |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		out |= unix.S_ISVTX
	}
	return out
}

// entry copies one non-directory (or a directory's own metadata) from src
// to rel.
func (w *writer) entry(src string, fi fs.FileInfo, rel string) error {
	st := fi.Sys().(*syscall.Stat_t)
	uid, gid := w.ownerOf(st)
	switch {
	case fi.IsDir():
		_, err := w.dir(rel, func(host string) error { return w.meta(host, uid, gid, w.modeOf(fi.Mode()), fi.ModTime(), true) })
		if err == nil {
			host, _ := securejoin.SecureJoin(w.root, rel)
			w.dirs = append(w.dirs, dirTime{host, fi.ModTime()})
		}
		return err
	case fi.Mode().IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		return w.file(rel, in, uid, gid, w.modeOf(fi.Mode()), fi.ModTime())
	case fi.Mode()&os.ModeSymlink != 0:
		link, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return w.symlink(rel, link, uid, gid, fi.ModTime())
	}
	return nil // sockets, devices and fifos are not copied
}

func (w *writer) file(rel string, r io.Reader, uid, gid int, mode uint32, mtime time.Time) error {
	host, err := w.place(rel)
	if err != nil {
		return err
	}
	out, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return w.meta(host, uid, gid, mode, mtime, false)
}

func (w *writer) symlink(rel, link string, uid, gid int, mtime time.Time) error {
	host, err := w.place(rel)
	if err != nil {
		return err
	}
	if err := os.Symlink(link, host); err != nil {
		return err
	}
	if err := os.Lchown(host, uid, gid); err != nil {
		return err
	}
	ts := unix.NsecToTimespec(mtime.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, host, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// meta sets owner, then mode (chown clears set-id bits), then times.
func (w *writer) meta(host string, uid, gid int, mode uint32, mtime time.Time, isDir bool) error {
	if err := os.Lchown(host, uid, gid); err != nil {
		return err
	}
	if err := unix.Chmod(host, mode); err != nil {
		return err
	}
	if isDir {
		return nil // after its content: finish
	}
	ts := unix.NsecToTimespec(mtime.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, host, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// tree copies the content of directory src into directory rel; skip
// filters source paths (relative to src) out.
func (w *writer) tree(src, rel string, skip func(string) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		sub, _ := filepath.Rel(src, p)
		sub = filepath.ToSlash(sub)
		if sub != "." && skip != nil && skip(sub) {
			// An ignored directory is still walked: an exclusion
			// ("!dir/keep") may bring some of its entries back.
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		target := path.Join(rel, sub)
		if sub == "." {
			// The destination directory itself: created like its source
			// when missing, left as it is otherwise.
			_, err := w.dir(rel, func(host string) error {
				st := fi.Sys().(*syscall.Stat_t)
				uid, gid := w.ownerOf(st)
				w.dirs = append(w.dirs, dirTime{host, fi.ModTime()})
				return w.meta(host, uid, gid, w.modeOf(fi.Mode()), fi.ModTime(), true)
			})
			return err
		}
		return w.entry(p, fi, target)
	})
}

// finish sets the times of the directories made, deepest first.
func (w *writer) finish() error {
	for i := len(w.dirs) - 1; i >= 0; i-- {
		ts := unix.NsecToTimespec(w.dirs[i].mtime.UnixNano())
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, w.dirs[i].host, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// unpackArchive unpacks a local tar (plain, gzip or bzip2) into directory
// rel, as ADD does, and reports false for a file that is no archive.
// Entry names stay inside rel; links resolve inside the root; device
// nodes are not made.
func (w *writer) unpackArchive(src, rel string) (bool, error) {
	f, err := os.Open(src)
	if err != nil {
		return false, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(512)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return false, nil
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(magic, []byte("BZh")):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return false, errors.New("xz archives are not supported; use gzip or bzip2, or unpack it in a RUN step")
	case len(magic) >= 262 && string(magic[257:262]) == "ustar":
	default:
		return false, nil
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return true, w.finish()
		}
		if err != nil {
			return true, err
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if name == "" {
			continue
		}
		target := path.Join(rel, name)
		uid, gid := hdr.Uid, hdr.Gid
		if w.chown != nil {
			uid, gid = w.chown.uid, w.chown.gid
		}
		mode := uint32(hdr.Mode & 0o7777)
		if w.mode != nil {
			mode = uint32(*w.mode)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			host, err := w.dir(target, nil)
			if err == nil {
				err = w.meta(host, uid, gid, mode, hdr.ModTime, true)
				w.dirs = append(w.dirs, dirTime{host, hdr.ModTime})
			}
			if err != nil {
				return true, fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeReg:
			if err := w.file(target, tr, uid, gid, mode, hdr.ModTime); err != nil {
				return true, fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			if err := w.symlink(target, hdr.Linkname, uid, gid, hdr.ModTime); err != nil {
				return true, fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			old, err := securejoin.SecureJoin(w.root, path.Join(rel, path.Clean("/"+hdr.Linkname)))
			if err != nil {
				return true, err
			}
			host, err := w.place(target)
			if err == nil {
				err = os.Link(old, host)
			}
			if err != nil {
				return true, fmt.Errorf("%s: hard link to %s: %w", hdr.Name, hdr.Linkname, err)
			}
		}
	}
}

// contextDir is the build context: its .dockerignore and the content
// hashes of its files.
type contextDir struct {
	root   string
	pm     *patternmatcher.PatternMatcher
	sums   map[string]fileSum
	file   string
	loaded map[string]fileSum
}

// fileSum is a file's content hash and what tells that it did not change.
type fileSum struct {
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"`
	Ctime int64  `json:"ctime"`
	Ino   uint64 `json:"ino"`
	Sum   string `json:"sum"`
	// Hashed is when the content was read (Unix nanoseconds).
	Hashed int64 `json:"hashed"`
}

// racyWindow is how long before its hashing a file's change time must
// be for the hash to be trusted later (git's "racily clean" entries): the
// kernel stamps files from a coarse clock, so a file written in the same
// tick as it was read could change again with the same times.
const racyWindow = 50 * time.Millisecond

// context reads the build context's .dockerignore (Dockerfile.dockerignore
// beside the Dockerfile first, as BuildKit does) once.
func (r *run) context() (*contextDir, error) {
	if r.ctx != nil {
		return r.ctx, nil
	}
	cd := &contextDir{root: r.opts.Context, sums: map[string]fileSum{}, file: r.b.store.ContextSumsFile(r.opts.Context)}
	var patterns []string
	for _, p := range []string{r.opts.Dockerfile + ".dockerignore", filepath.Join(r.opts.Context, ".dockerignore")} {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		break
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	cd.pm = pm
	if b, err := os.ReadFile(cd.file); err == nil {
		_ = json.Unmarshal(b, &cd.loaded)
	}
	r.ctx = cd
	return cd, nil
}

// ignored tells whether .dockerignore leaves a context path out.
func (cd *contextDir) ignored(rel string) bool {
	if rel == "" || rel == "." {
		return false
	}
	m, err := cd.pm.MatchesOrParentMatches(rel)
	return err == nil && m
}

// match resolves a COPY source in the context: a path or a pattern,
// inside the context whatever its ".."s and symlinks say.
func (cd *contextDir) match(src string) ([]string, error) {
	m, err := matchIn(cd.root, src, cd.ignored)
	if err != nil {
		return nil, err
	}
	if len(m) == 0 && !strings.ContainsAny(src, "*?[") {
		return nil, fmt.Errorf("%s: not found in the build context (or excluded by .dockerignore)", src)
	}
	return m, nil
}

// matchIn resolves a source path or pattern under root to slash paths
// relative to root. Patterns are matched one path element at a time.
func matchIn(root, src string, ignored func(string) bool) ([]string, error) {
	clean := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(src)), "/")
	if !strings.ContainsAny(clean, "*?[") {
		rel, ok, err := resolveIn(root, clean, ignored)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s: not found (in the build context it may be excluded by .dockerignore)", src)
		}
		return []string{rel}, nil
	}
	cur := []string{""}
	for _, elem := range strings.Split(clean, "/") {
		var next []string
		for _, dir := range cur {
			if !strings.ContainsAny(elem, "*?[") {
				next = append(next, path.Join(dir, elem))
				continue
			}
			host, err := securejoin.SecureJoin(root, dir)
			if err != nil {
				return nil, err
			}
			entries, err := os.ReadDir(host)
			if err != nil {
				continue
			}
			for _, e := range entries {
				ok, err := path.Match(elem, e.Name())
				if err != nil {
					return nil, fmt.Errorf("%s: %w", src, err)
				}
				if ok {
					next = append(next, path.Join(dir, e.Name()))
				}
			}
		}
		cur = next
	}
	// A match is named by where it resolves inside root: a symlink on the
	// way (sym -> /etc in s*/shadow) must neither lead out of root nor
	// past .dockerignore (pub -> private in pub/*).
	seen := map[string]bool{}
	var out []string
	for _, m := range cur {
		rel, ok, err := resolveIn(root, m, ignored)
		if err != nil {
			return nil, err
		}
		if ok && !seen[rel] {
			seen[rel] = true
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out, nil
}

// resolveIn resolves rel inside root, symlinks included and never leaving
// root, and returns the path it resolves to, relative to root; ok is false
// when nothing is there or .dockerignore excludes what is.
func resolveIn(root, rel string, ignored func(string) bool) (string, bool, error) {
	host, err := securejoin.SecureJoin(root, rel)
	if err != nil {
		return "", false, err
	}
	r, err := filepath.Rel(root, host)
	if err != nil {
		return "", false, err
	}
	r = filepath.ToSlash(r)
	if r == "." {
		r = ""
	}
	if _, err := os.Lstat(host); err != nil || ignored != nil && ignored(r) {
		return "", false, nil
	}
	return r, true, nil
}

// hashTree writes what COPY takes of the context tree at rel into h:
// every entry not ignored, its path, type, mode, size, link target and
// content. Times and owners are left out: COPY makes files root's, and
// touching a file does not change what is copied.
func (cd *contextDir) hashTree(h io.Writer, rel string) error {
	top := filepath.Join(cd.root, filepath.FromSlash(rel))
	return filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		sub, _ := filepath.Rel(cd.root, p)
		sub = filepath.ToSlash(sub)
		if p != top && cd.ignored(sub) {
			if d.IsDir() && !cd.pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%o\x00", sub, fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			sum, err := cd.sum(p, sub, fi)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%d\x00%s\n", fi.Size(), sum)
		case fi.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\n", link)
		default:
			fmt.Fprintf(h, "\n")
		}
		return nil
	})
}

// sum is a file's content hash, read again only when its size, times or
// inode changed since the last build of this context.
func (cd *contextDir) sum(p, rel string, fi fs.FileInfo) (string, error) {
	st := fi.Sys().(*syscall.Stat_t)
	now := fileSum{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino}
	if s, ok := cd.sums[rel]; ok {
		return s.Sum, nil
	}
	if old, ok := cd.loaded[rel]; ok && old.Size == now.Size && old.Mtime == now.Mtime && old.Ctime == now.Ctime && old.Ino == now.Ino &&
		max(old.Mtime, old.Ctime) < old.Hashed-int64(racyWindow) {
		cd.sums[rel] = old
		return old.Sum, nil
	}
	now.Hashed = time.Now().UnixNano()
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	now.Sum = hex.EncodeToString(h.Sum(nil))
	cd.sums[rel] = now
	return now.Sum, nil
}

// saveSums remembers the content hashes of the files this build read,
// for the next build of the same context.
func (cd *contextDir) saveSums() {
	if len(cd.sums) == 0 {
		return
	}
	same := len(cd.sums) == len(cd.loaded)
	for k, v := range cd.sums {
		if same && cd.loaded[k] != v {
			same = false
		}
	}
	if same {
		return
	}
	b, err := json.Marshal(cd.sums)
	if err != nil {
		return
	}
	_ = os.MkdirAll(filepath.Dir(cd.file), 0o700)
	_ = atomicfile.WriteFile(cd.file, b, 0o600)
}
