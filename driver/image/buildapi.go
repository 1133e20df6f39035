package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
	"github.com/seed-e88ffcd2/berth/resource"
)

// What a builder (package build) needs of the store: images by name,
// their unpacked layers, new layers from an overlay's upper directory, new
// images from a config and layers, names, and the build cache. Every
// intermediate step of a build is a stored image (manifest, config,
// layers) that no name records; the build cache's entries point at them,
// and GC keeps what the cache points at until the cache is pruned.

// Builder builds an image from a Dockerfile into the store: the build
// package implements it and the agent wires it in (SetBuilder). With
// cacheOnly it executes nothing and fails with ErrNotCached unless every
// step is in the build cache, which is what Preview asks at plan time.
type Builder interface {
	// Build returns the built image's manifest digest and its build key:
	// the cache key of its last step. A cache-only build that misses
	// returns ErrNotCached and the key of the first step the cache lacks,
	// which changes whenever the build's inputs do.
	Build(ctx context.Context, spec *resource.ImageBuildSpec, cacheOnly bool) (digest v1.Hash, key string, err error)
}

// ErrNotCached is what a cache-only build fails with when a step would
// have to run.
var ErrNotCached = errors.New("not in the build cache")

// SetBuilder gives the store the builder of images with a build block.
func (s *Store) SetBuilder(b Builder) { s.builder = b }

// Image is a stored image.
type Image struct {
	Digest    v1.Hash // of the manifest
	ID        v1.Hash // of the config
	MediaType types.MediaType
	Size      int64 // of the manifest
	Manifest  *v1.Manifest
	Config    *v1.ConfigFile
}

func exported(img *storedImage) *Image {
	return &Image{Digest: img.Digest, ID: img.ID, MediaType: img.MediaType, Size: img.Size, Manifest: img.Manifest, Config: img.Config}
}

// Hold keeps the store's content from garbage collection until release:
// a builder holds it for the whole build, so that the intermediate images
// it makes survive until the cache records them.
func (s *Store) Hold() (release func(), err error) {
	return s.lock(lockContent, unix.LOCK_SH)
}

// Lookup finds a recorded image by name (NAME, NAME:TAG; a name without a
// tag also finds NAME:latest, and NAME:latest finds NAME), NAME@DIGEST or
// a digest. It fails with resource.ErrNotFound.
func (s *Store) Lookup(ref string) (*Image, error) {
	digest, _, err := s.resolveRef(ref)
	if err != nil {
		return nil, err
	}
	img, err := s.loadImage(digest)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return exported(img), nil
}

// ImageByDigest loads any stored image manifest, named or not.
func (s *Store) ImageByDigest(digest v1.Hash) (*Image, error) {
	if err := checkHash(digest); err != nil {
		return nil, err
	}
	img, err := s.loadImage(digest)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("image %s: %w", digest, resource.ErrNotFound)
		}
		return nil, err
	}
	return exported(img), nil
}

// resolveRef finds the manifest digest a reference names, and the record
// name it was found under ("" for a bare digest).
func (s *Store) resolveRef(ref string) (v1.Hash, string, error) {
	recs, err := s.readRecords()
	if err != nil {
		return v1.Hash{}, "", err
	}
	for _, n := range nameCandidates(ref) {
		if r := recs.Images[n]; r != nil {
			return r.Digest, n, nil
		}
	}
	d := ref
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		d = ref[i+1:]
	}
	h, err := v1.NewHash(d)
	if err != nil || checkHash(h) != nil {
		return v1.Hash{}, "", resource.Errorf(resource.ErrNotFound, "no image %q in the store (berth image ls lists them)", ref)
	}
	for n, r := range recs.Images {
		if r.Digest == h {
			return h, n, nil
		}
	}
	// An unnamed image the build cache keeps is found by its digest too.
	if s.hasBlob(h) {
		if _, err := s.loadImage(h); err == nil {
			return h, "", nil
		}
	}
	return v1.Hash{}, "", resource.Errorf(resource.ErrNotFound, "no image %q in the store (berth image ls lists them)", ref)
}

// nameCandidates are the record names a user's name may mean, most exact
// first: docker's "busybox" is "busybox:latest".
func nameCandidates(ref string) []string {
	out := []string{ref}
	if base, ok := strings.CutSuffix(ref, ":latest"); ok {
		return append(out, base)
	}
	if !hasTag(ref) {
		out = append(out, ref+":latest")
	}
	return out
}

// hasTag tells whether a name ends in :TAG (a colon after the last slash,
// so that a registry's port is not taken for one).
func hasTag(name string) bool {
	i := strings.LastIndexByte(name, ':')
	return i > strings.LastIndexByte(name, '/')
}

// LayerDirs unpacks what is not unpacked yet of an image and returns its
// layer directories, lowest first: an overlay's lower directories.
func (s *Store) LayerDirs(img *Image) ([]string, error) {
	return s.ensureLayers(&storedImage{Digest: img.Digest, Manifest: img.Manifest, Config: img.Config})
}

// Layer is a new layer a builder made.
type Layer struct {
	Descriptor v1.Descriptor
	DiffID     v1.Hash
	// Empty: the directory held no change, and no layer was stored.
	Empty bool
}

// PutDiff stores the changes an overlay's upper directory holds as a
// layer (uncompressed, so its digest is its diff ID) and unpacks it, so
// the next step of a build can stack it. Overlay whiteouts (0:0 character
// devices) become ".wh.NAME" entries, opaque directories (the
// trusted.overlay.opaque attribute) ".wh..wh..opq"; the layer is
// unpacked through the same checks as any pulled layer.
func (s *Store) PutDiff(dir string) (Layer, error) {
	n := 0
	pr, pw := io.Pipe()
	go func() {
		var err error
		n, err = tarDiff(pw, dir)
		pw.CloseWithError(err)
	}()
	digest, size, err := s.putBlob(pr, v1.Hash{})
	pr.CloseWithError(err)
	if err != nil {
		return Layer{}, fmt.Errorf("layer of %s: %w", dir, err)
	}
	if n == 0 {
		return Layer{Empty: true}, nil
	}
	desc := v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: size, Digest: digest}
	if _, err := os.Stat(s.layerPath(digest)); err != nil {
		if err := s.unpackLayer(desc, digest); err != nil {
			return Layer{}, fmt.Errorf("unpack the new layer: %w", err)
		}
	}
	return Layer{Descriptor: desc, DiffID: digest}, nil
}

// tarDiff writes an overlay upper directory as an OCI layer tar and
// returns how many entries it wrote. Entries come in lexical order with
// their own times, owners and modes; the root directory is left out (its
// metadata belongs to the layer below).
func tarDiff(w io.Writer, dir string) (int, error) {
	tw := tar.NewWriter(w)
	links := map[inode]string{}
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, path)
		name := filepath.ToSlash(rel)
		if strings.HasPrefix(filepath.Base(rel), whiteoutPrefix) {
			return fmt.Errorf("%s: a file name starting with %q cannot be put in a layer", name, whiteoutPrefix)
		}
		if v, ok := getXattr(path, "trusted.overlay.redirect"); ok {
			return fmt.Errorf("%s: overlayfs redirected this directory to %q (redirect_dir); berth needs it off", name, v)
		}
		if _, ok := getXattr(path, "trusted.overlay.metacopy"); ok {
			return fmt.Errorf("%s: overlayfs copied up only the metadata of this file (metacopy); berth needs it off", name)
		}
		hdr := &tar.Header{
			Name:    name,
			Mode:    int64(st.Mode & 0o7777),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC(),
			Format:  tar.FormatPAX,
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			if st.Rdev != 0 {
				return nil // a device node: the unpacker would refuse it anyway
			}
			// An overlay whiteout: the name is deleted.
			parent, base := filepath.Split(name)
			n++
			return tw.WriteHeader(&tar.Header{Name: parent + whiteoutPrefix + base, Typeflag: tar.TypeReg, Mode: 0o600, ModTime: hdr.ModTime, Format: tar.FormatPAX})
		case unix.S_IFDIR:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			n++
			if v, ok := getXattr(path, "trusted.overlay.opaque"); ok && v == "y" {
				n++
				return tw.WriteHeader(&tar.Header{Name: hdr.Name + whiteoutOpaque, Typeflag: tar.TypeReg, Mode: 0o600, ModTime: hdr.ModTime, Format: tar.FormatPAX})
			}
			return nil
		default:
			if ok, err := fileHeader(hdr, path, st, links); err != nil || !ok {
				return err
			}
		}
		n++
		return writeEntry(tw, hdr, path)
	})
	if err != nil {
		return n, err
	}
	return n, tw.Close()
}

// getXattr reads an extended attribute of path itself (not a symlink's
// target).
func getXattr(path, name string) (string, bool) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil || n < 0 {
		return "", false
	}
	return string(buf[:n]), true
}

// PutImage stores an image made of a config and layers (each already
// stored) and returns it. The config's rootfs is set from the layers.
func (s *Store) PutImage(cfg *v1.ConfigFile, layers []Layer) (*Image, error) {
	c := *cfg
	c.RootFS = v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Layers: []v1.Descriptor{}}
	for _, l := range layers {
		if l.Empty {
			continue
		}
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, l.DiffID)
		m.Layers = append(m.Layers, l.Descriptor)
	}
	cfgDigest, cfgRaw, err := s.putJSON(c)
	if err != nil {
		return nil, err
	}
	m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfgRaw)), Digest: cfgDigest}
	digest, _, err := s.putJSON(m)
	if err != nil {
		return nil, err
	}
	img, err := s.loadImage(digest)
	if err != nil {
		return nil, err
	}
	return exported(img), nil
}

// LayersOf lists an image's layers as PutImage takes them.
func LayersOf(img *Image) []Layer {
	out := make([]Layer, len(img.Manifest.Layers))
	for i, d := range img.Manifest.Layers {
		out[i] = Layer{Descriptor: d, DiffID: img.Config.RootFS.DiffIDs[i]}
	}
	return out
}

// Tag records name for a stored image, without an owner, as berth build
// -t, berth image tag and berth image load do. A name a project recorded
// (its image block) is refused: moving it would change what the project's
// containers run behind its back.
func (s *Store) Tag(name string, digest v1.Hash) error {
	name, err := NormalizeName(name)
	if err != nil {
		return err
	}
	img, err := s.loadImage(digest)
	if err != nil {
		return fmt.Errorf("image %s: %w", digest, err)
	}
	rec := &record{Digest: img.Digest, ID: img.ID, MediaType: img.MediaType, Size: img.Size}
	var taken error
	err = s.updateRecords(func(recs *records) bool {
		if taken = ownedName(recs, name); taken != nil {
			return false
		}
		old := recs.Images[name]
		if old != nil && *old == *rec {
			return false
		}
		recs.Images[name] = rec
		dropAliases(recs, name)
		return true
	})
	if err != nil {
		return err
	}
	return taken
}

// ownedName refuses a name a project recorded (its image block): berth
// build, pull, tag, load and import may not move it.
func ownedName(recs *records, name string) error {
	for _, n := range nameCandidates(name) {
		if old := recs.Images[n]; old != nil && old.Owner != "" {
			return resource.Errorf(resource.ErrConflict, "image name %q belongs to %s; choose another name", n, old.Owner)
		}
	}
	return nil
}

// dropAliases removes the records, without an owner, of the names that
// mean the same as name ("app" beside "app:latest"), written before
// names were normalised.
func dropAliases(recs *records, name string) {
	for _, n := range nameCandidates(name)[1:] {
		if r := recs.Images[n]; r != nil && r.Owner == "" {
			delete(recs.Images, n)
		}
	}
}

// The build cache: one small index file, build-cache.json, mapping a
// step's key (its parent, its instruction and the content of its inputs;
// the builder computes it) to the image the step made.

const buildCacheFile = "build-cache.json"

// buildCacheVersion is the version of build-cache.json this code writes.
const buildCacheVersion = 1

// BuildCacheEntry is the result of one cached build step.
type BuildCacheEntry struct {
	Manifest v1.Hash   `json:"manifest"`
	Created  time.Time `json:"created"`
	// Inputs are the images the step's key depends on: its parent and
	// any image or stage it copied from. Pruning keeps the entries of
	// every image a kept entry's inputs name, so that a kept image
	// rebuilds from the cache.
	Inputs []v1.Hash `json:"inputs,omitempty"`
}

type buildCache struct {
	Version int                         `json:"version"`
	Entries map[string]*BuildCacheEntry `json:"entries"`
}

func (s *Store) buildCachePath() string { return filepath.Join(s.root, buildCacheFile) }

func (s *Store) readBuildCache() (*buildCache, error) {
	c := &buildCache{Version: buildCacheVersion, Entries: map[string]*BuildCacheEntry{}}
	b, err := os.ReadFile(s.buildCachePath())
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	if err := json.Unmarshal(b, c); err != nil || c.Version > buildCacheVersion {
		// The cache only saves time: an unreadable one is an empty one.
		return &buildCache{Version: buildCacheVersion, Entries: map[string]*BuildCacheEntry{}}, nil
	}
	if c.Entries == nil {
		c.Entries = map[string]*BuildCacheEntry{}
	}
	return c, nil
}

// BuildCache returns the build cache's entries, read once per build.
func (s *Store) BuildCache() (map[string]*BuildCacheEntry, error) {
	c, err := s.readBuildCache()
	if err != nil {
		return nil, err
	}
	return c.Entries, nil
}

// AddBuildCache records the result of a build step, made from the
// images inputs (its parent, the images and stages it copied from).
func (s *Store) AddBuildCache(key string, manifest v1.Hash, inputs ...v1.Hash) error {
	return s.updateBuildCache(func(c *buildCache) bool {
		if e := c.Entries[key]; e != nil && e.Manifest == manifest && slices.Equal(e.Inputs, inputs) {
			return false
		}
		c.Entries[key] = &BuildCacheEntry{Manifest: manifest, Created: time.Now().UTC(), Inputs: inputs}
		return true
	})
}

// updateBuildCache applies fn to the cache and writes it if fn reports a
// change.
func (s *Store) updateBuildCache(fn func(*buildCache) bool) error {
	unlock, err := s.lock("build-cache.lock", unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := s.readBuildCache()
	if err != nil {
		return err
	}
	if !fn(c) {
		return nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.buildCachePath(), b, 0o644); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	return nil
}

// TmpDir makes a directory for a builder's work in progress inside the
// store (on its filesystem, so overlay upper directories and the layers
// are on one), removed by GC if a crash leaves it.
func (s *Store) TmpDir(pattern string) (string, error) {
	return os.MkdirTemp(s.tmpDir(), pattern)
}

// markBuildCache marks what the build cache's entries need as live, and
// drops the entries whose image is not whole. The caller (GC) holds the
// store exclusively.
func (s *Store) markBuildCache(liveBlobs, liveLayers map[string]bool) error {
	return s.updateBuildCache(func(c *buildCache) bool {
		changed := false
		for key, e := range c.Entries {
			img, err := s.loadImage(e.Manifest)
			if err != nil {
				delete(c.Entries, key)
				changed = true
				continue
			}
			liveBlobs[img.Digest.Hex] = true
			liveBlobs[img.ID.Hex] = true
			for i, l := range img.Manifest.Layers {
				liveBlobs[l.Digest.Hex] = true
				liveLayers[img.Config.RootFS.DiffIDs[i].Hex] = true
			}
		}
		return changed
	})
}

// ContextSumsFile is where a builder keeps the content hashes of a build
// context's files (keyed by path, size, times and inode), so that an
// unchanged context is not read again; pruning the build cache removes
// it.
func (s *Store) ContextSumsFile(contextDir string) string {
	return filepath.Join(s.contextSumsDir(), cacheKey("context", contextDir)+".json")
}

func (s *Store) contextSumsDir() string { return filepath.Join(s.root, "build-contexts") }
