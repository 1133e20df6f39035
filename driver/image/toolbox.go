package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/resource"
)

// The image toolbox: what berth image ls, inspect, history, tag, rm and
// prune and berth system df do to the store. Names a project records
// (its image blocks) are its own: the toolbox shows them and never
// moves or removes them; what containers use is never removed either.

// Summary is one named image, as berth image ls shows it.
type Summary struct {
	Name    string    `json:"name"`
	Digest  string    `json:"digest"`
	ID      string    `json:"id"`
	Created time.Time `json:"created,omitzero"`
	// Size is what the image's blobs take: its layers (as stored,
	// compressed or not) and its config.
	Size int64 `json:"size"`
	// Owner is the project (PROJECT/ADDRESS) whose image block recorded
	// the name; empty for names berth build, pull, tag and load recorded.
	Owner      string `json:"owner,omitempty"`
	RepoDigest string `json:"repo_digest,omitempty"`
}

// List describes every named image, by name.
func (s *Store) List() ([]Summary, error) {
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(recs.Images))
	for _, name := range slices.Sorted(maps.Keys(recs.Images)) {
		r := recs.Images[name]
		sum := Summary{Name: name, Digest: r.Digest.String(), ID: r.ID.String(), Owner: r.Owner}
		if r.RepoDigest != (v1.Hash{}) {
			sum.RepoDigest = r.RepoDigest.String()
		}
		if img, err := s.loadImage(r.Digest); err == nil {
			sum.Created = img.Config.Created.Time
			sum.Size = imageSize(img)
		}
		out = append(out, sum)
	}
	return out, nil
}

func imageSize(img *storedImage) int64 {
	n := img.Manifest.Config.Size
	for _, l := range img.Manifest.Layers {
		n += l.Size
	}
	return n
}

// Details is an image as berth image inspect shows it.
type Details struct {
	// Names are the names recorded for the image's digest.
	Names      []string       `json:"names"`
	Digest     string         `json:"digest"`
	ID         string         `json:"id"`
	MediaType  string         `json:"media_type"`
	Size       int64          `json:"size"`
	Owners     []string       `json:"owners,omitempty"`
	RepoDigest string         `json:"repo_digest,omitempty"`
	Manifest   *v1.Manifest   `json:"manifest"`
	Config     *v1.ConfigFile `json:"config"`
}

// Inspect describes the image ref names (a name, NAME@DIGEST or a digest).
func (s *Store) Inspect(ref string) (*Details, error) {
	digest, _, err := s.resolveRef(ref)
	if err != nil {
		return nil, err
	}
	img, err := s.loadImage(digest)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	d := &Details{Names: []string{}, Digest: img.Digest.String(), ID: img.ID.String(), MediaType: string(img.MediaType),
		Size: imageSize(img), Manifest: img.Manifest, Config: img.Config}
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	for _, n := range slices.Sorted(maps.Keys(recs.Images)) {
		if r := recs.Images[n]; r.Digest == digest {
			d.Names = append(d.Names, n)
			if r.Owner != "" && !slices.Contains(d.Owners, r.Owner) {
				d.Owners = append(d.Owners, r.Owner)
			}
			if r.RepoDigest != (v1.Hash{}) {
				d.RepoDigest = r.RepoDigest.String()
			}
		}
	}
	return d, nil
}

// HistoryEntry is one step of an image's history, newest first as docker
// history lists them.
type HistoryEntry struct {
	Created    time.Time `json:"created,omitzero"`
	CreatedBy  string    `json:"created_by"`
	Comment    string    `json:"comment,omitempty"`
	EmptyLayer bool      `json:"empty_layer,omitempty"`
	// Layer and Size are the step's layer (empty for a step that only
	// changed the config) and its stored size.
	Layer string `json:"layer,omitempty"`
	Size  int64  `json:"size"`
}

// History lists how the image ref names was made.
func (s *Store) History(ref string) ([]HistoryEntry, error) {
	digest, _, err := s.resolveRef(ref)
	if err != nil {
		return nil, err
	}
	img, err := s.loadImage(digest)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	var out []HistoryEntry
	layer := 0
	hist := img.Config.History
	if len(hist) == 0 {
		// An image without history: one entry per layer.
		for range img.Manifest.Layers {
			hist = append(hist, v1.History{})
		}
	}
	for _, h := range hist {
		e := HistoryEntry{Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if !h.EmptyLayer && layer < len(img.Manifest.Layers) {
			l := img.Manifest.Layers[layer]
			e.Layer, e.Size = l.Digest.String(), l.Size
			layer++
		}
		out = append(out, e)
	}
	slices.Reverse(out)
	return out, nil
}

// TagName records name for the image src names, as docker tag does.
func (s *Store) TagName(src, name string) (v1.Hash, error) {
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return v1.Hash{}, err
	}
	defer unlock()
	digest, _, err := s.resolveRef(src)
	if err != nil {
		return v1.Hash{}, err
	}
	return digest, s.Tag(name, digest)
}

// Users tells which containers use an image, by its manifest digest; the
// agent answers it from the container driver.
type Users func(digest v1.Hash) []string

// Removed is what berth image rm or prune removed.
type Removed struct {
	// Untagged are the names removed.
	Untagged []string `json:"untagged,omitempty"`
	// Deleted are the images no name records any more.
	Deleted []string `json:"deleted,omitempty"`
	// BuildCache is how many build cache entries were dropped.
	BuildCache int `json:"build_cache,omitempty"`
	// Reclaimed is how many bytes the store gave back.
	Reclaimed int64 `json:"reclaimed"`
}

// ErrInUse is what removing an image that a container or a project
// needs fails with (resource.ErrConflict).
var ErrInUse = resource.ErrConflict

// Remove removes the name ref (or, for a digest, every name of that
// image), then collects what no name needs. A name a project recorded is
// refused: that project's state needs it (remove the image block and
// apply). The last name of an image a container uses is refused too,
// naming the container; another name of it may go.
func (s *Store) Remove(ctx context.Context, ref string, users Users) (*Removed, error) {
	before := s.usage()
	var refused error
	removed := &Removed{}
	err := func() error {
		unlock, err := s.lock(lockContent, unix.LOCK_SH)
		if err != nil {
			return err
		}
		defer unlock()
		digest, found, err := s.resolveRef(ref)
		if err != nil {
			return err
		}
		return s.updateRecords(func(recs *records) bool {
			var names []string
			if found != "" && !strings.Contains(ref, "@") && !isDigest(ref) {
				names = []string{found}
			} else {
				for n, r := range recs.Images {
					if r.Digest == digest {
						names = append(names, n)
					}
				}
				sort.Strings(names)
			}
			for _, n := range names {
				if o := recs.Images[n].Owner; o != "" {
					refused = resource.Errorf(ErrInUse, "image %s belongs to %s (an image block of that project): remove the block and apply, or destroy the project", n, o)
					return false
				}
			}
			others := 0
			for n, r := range recs.Images {
				if r.Digest == digest && !slices.Contains(names, n) {
					others++
				}
			}
			if others == 0 && users != nil {
				if u := users(digest); len(u) > 0 {
					refused = resource.Errorf(ErrInUse, "image %s is used by container %s: remove the container first (berth rm)", ref, strings.Join(u, ", "))
					return false
				}
			}
			for _, n := range names {
				delete(recs.Images, n)
			}
			removed.Untagged = names
			if others == 0 {
				removed.Deleted = []string{digest.String()}
			}
			return len(names) > 0
		})
	}()
	if err == nil {
		err = refused
	}
	if err != nil {
		return nil, err
	}
	if err := s.GC(ctx); err != nil {
		return removed, err
	}
	removed.Reclaimed = max(before-s.usage(), 0)
	return removed, nil
}

func isDigest(ref string) bool {
	h, err := v1.NewHash(ref)
	return err == nil && checkHash(h) == nil
}

// PruneOptions say what berth image prune removes besides unreferenced
// content.
type PruneOptions struct {
	// All removes every name no project recorded whose image no
	// container uses (docker image prune -a).
	All bool
	// AllBuildCache drops the whole build cache; without it, only the
	// entries that keep a layer no remaining image has go, so a project's
	// built image still plans "no changes".
	AllBuildCache bool
	// KeepBuildCache keeps the build cache whole.
	KeepBuildCache bool
}

// Prune removes, with All, the names berth build, pull, tag and load
// recorded whose images no container uses; then the build cache entries
// that keep layers no remaining image has (all of them with
// AllBuildCache); then collects what nothing needs any more: blobs,
// unpacked layers, work a crash left behind. Images a project recorded,
// and those containers use, stay.
func (s *Store) Prune(ctx context.Context, opts PruneOptions, users Users) (*Removed, error) {
	before := s.usage()
	removed := &Removed{}
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	if opts.All {
		err = s.updateRecords(func(recs *records) bool {
			changed := false
			deleted := map[v1.Hash]bool{}
			for _, n := range slices.Sorted(maps.Keys(recs.Images)) {
				r := recs.Images[n]
				if r.Owner != "" || users != nil && len(users(r.Digest)) > 0 {
					continue
				}
				delete(recs.Images, n)
				removed.Untagged = append(removed.Untagged, n)
				deleted[r.Digest] = true
				changed = true
			}
			for _, r := range recs.Images {
				delete(deleted, r.Digest)
			}
			for d := range deleted {
				removed.Deleted = append(removed.Deleted, d.String())
			}
			sort.Strings(removed.Deleted)
			return changed
		})
	}
	if err == nil && !opts.KeepBuildCache {
		err = s.pruneBuildCache(opts.AllBuildCache, removed)
	}
	unlock()
	if err != nil {
		return nil, err
	}
	if err := s.GC(ctx); err != nil {
		return removed, err
	}
	removed.Reclaimed = max(before-s.usage(), 0)
	return removed, nil
}

// pruneBuildCache drops the cache entries no named image needs (all,
// with all). An entry stays when its image is a named image or an input
// of a kept entry (its parent, a stage it copied from: the chain that
// built a named image, every stage of it), or when its image has no
// layer a named image lacks (it keeps no bytes). The caller holds
// lockContent.
func (s *Store) pruneBuildCache(all bool, removed *Removed) error {
	recs, err := s.readRecords()
	if err != nil {
		return err
	}
	named := map[v1.Hash]bool{}
	kept := map[v1.Hash]bool{} // images a kept image was built from
	for _, r := range recs.Images {
		kept[r.Digest] = true
		m, err := readBlobAs(s.blobPath(r.Digest), v1.ParseManifest)
		if err != nil {
			// Unknown layers: keep the cache rather than guess.
			return nil
		}
		for _, l := range m.Layers {
			named[l.Digest] = true
		}
	}
	err = s.updateBuildCache(func(c *buildCache) bool {
		keep := map[string]bool{}
		if !all {
			// The chains that built the named images, back to their
			// bases, across stages.
			for changed := true; changed; {
				changed = false
				for key, e := range c.Entries {
					if keep[key] || !kept[e.Manifest] {
						continue
					}
					keep[key], changed = true, true
					for _, in := range e.Inputs {
						kept[in] = true
					}
				}
			}
		}
		for key, e := range c.Entries {
			drop := all
			if !drop && !keep[key] {
				m, err := readBlobAs(s.blobPath(e.Manifest), v1.ParseManifest)
				if err != nil {
					drop = true
				} else {
					for _, l := range m.Layers {
						drop = drop || !named[l.Digest]
					}
				}
			}
			if drop {
				delete(c.Entries, key)
				removed.BuildCache++
			}
		}
		return removed.BuildCache > 0
	})
	if err != nil {
		return err
	}
	if all {
		return os.RemoveAll(s.contextSumsDir())
	}
	return nil
}

// usage is the store's size on disk, 0 when it cannot be read.
func (s *Store) usage() int64 {
	n, _ := dirSize(s.root)
	return n
}

// Usage is what the store takes on disk, as berth system df shows it.
type Usage struct {
	// Images counts the named images, Blobs what their blobs take, and
	// Layers what their unpacked layers take.
	Images int   `json:"images"`
	Blobs  int64 `json:"blobs"`
	Layers int64 `json:"layers"`
	// Total is everything under the store's root.
	Total int64 `json:"total"`
	// BuildCache counts the build cache's entries and the bytes only the
	// cache keeps (prune gives them back).
	BuildCache      int   `json:"build_cache"`
	BuildCacheBytes int64 `json:"build_cache_bytes"`
}

// DiskUsage measures the store. The bytes the build cache alone keeps
// are those of blobs and layers no named image shares.
func (s *Store) DiskUsage() (*Usage, error) {
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	u := &Usage{Images: len(recs.Images)}
	named := map[string]bool{}
	for _, r := range recs.Images {
		img, err := s.loadImage(r.Digest)
		if err != nil {
			continue
		}
		named[img.Digest.Hex], named[img.ID.Hex] = true, true
		for i, l := range img.Manifest.Layers {
			named[l.Digest.Hex] = true
			named["layer:"+img.Config.RootFS.DiffIDs[i].Hex] = true
		}
	}
	if u.Blobs, err = dirSize(s.blobDir()); err != nil {
		return nil, err
	}
	if u.Layers, err = dirSize(s.layerDir()); err != nil {
		return nil, err
	}
	if u.Total, err = dirSize(s.root); err != nil {
		return nil, err
	}
	c, err := s.readBuildCache()
	if err != nil {
		return nil, err
	}
	u.BuildCache = len(c.Entries)
	counted := map[string]bool{}
	for _, e := range c.Entries {
		img, err := s.loadImage(e.Manifest)
		if err != nil {
			continue
		}
		add := func(key, path string) {
			if named[key] || counted[key] {
				return
			}
			counted[key] = true
			n, _ := dirSize(path)
			u.BuildCacheBytes += n
		}
		add(img.Digest.Hex, s.blobPath(img.Digest))
		add(img.ID.Hex, s.blobPath(img.ID))
		for i, l := range img.Manifest.Layers {
			add(l.Digest.Hex, s.blobPath(l.Digest))
			d := img.Config.RootFS.DiffIDs[i]
			add("layer:"+d.Hex, s.layerPath(d))
		}
	}
	return u, nil
}

// dirSize is the disk space a file or tree takes (allocated blocks), each
// inode counted once.
func dirSize(root string) (int64, error) {
	var n int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		n += st.Blocks * 512
		return nil
	})
	return n, err
}
