package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// GC removes every blob and unpacked layer that no record needs, with the
// cache entries that point at them and whatever work a crash left in tmp.
// It holds the store exclusively, so no import runs meanwhile: an image
// previewed but not yet created loses its blobs and is imported again by
// Create, which costs time but never correctness.
//
// A record whose manifest or config cannot be read is skipped, and named
// in the error, but what it may reference is kept: with its manifest
// unreadable no blob is removed, with its config unreadable no unpacked
// layer (a running container's lower directory, perhaps). Nothing is taken
// on a guess, and the rest of the store is still collected.
func (s *Store) GC(ctx context.Context) error {
	unlock, err := s.lock(lockContent, unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	recs, err := s.readRecords()
	if err != nil {
		return err
	}
	liveBlobs := map[string]bool{}
	liveLayers := map[string]bool{}
	blobsKnown, layersKnown := true, true
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(recs.Images)) {
		r := recs.Images[name]
		liveBlobs[r.Digest.Hex] = true
		if r.RepoDigest.Hex != "" {
			liveBlobs[r.RepoDigest.Hex] = true
		}
		// Read without the checks of loadImage: a damaged image must
		// still keep what it references.
		m, err := readBlobAs(s.blobPath(r.Digest), v1.ParseManifest)
		if err != nil {
			errs = append(errs, fmt.Errorf("image %s is unreadable, its blobs and layers are kept: %w", name, err))
			blobsKnown, layersKnown = false, false
			continue
		}
		liveBlobs[m.Config.Digest.Hex] = true
		for _, l := range m.Layers {
			liveBlobs[l.Digest.Hex] = true
		}
		cfg, err := readBlobAs(s.blobPath(m.Config.Digest), v1.ParseConfigFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("image %s is unreadable, its layers are kept: %w", name, err))
			layersKnown = false
			continue
		}
		for _, d := range cfg.RootFS.DiffIDs {
			liveLayers[d.Hex] = true
		}
	}
	// The build cache keeps the images of its steps (buildapi.go); an
	// entry whose image is damaged or gone is dropped instead.
	if err := s.markBuildCache(liveBlobs, liveLayers); err != nil {
		errs = append(errs, err)
	}

	// A container's root filesystem is an overlay of unpacked layers; its
	// image may have no record any more (removed from the configuration,
	// or owned by a project that forgot the container). The kernel knows
	// which layers are mounted: those stay.
	mounted, err := mountedLayers(s.layerDir())
	if err != nil {
		errs = append(errs, fmt.Errorf("reading the mounts, every unpacked layer is kept: %w", err))
		layersKnown = false
	}
	for hex := range mounted {
		liveLayers[hex] = true
	}

	sweep := func(dir string, live map[string]bool) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, e := range entries {
			if !live[e.Name()] {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if blobsKnown {
		sweep(s.blobDir(), liveBlobs)
	}
	if layersKnown {
		sweep(s.layerDir(), liveLayers)
	}
	sweep(s.tmpDir(), nil)

	var entries []os.DirEntry
	if blobsKnown {
		// The cache is swept with the blobs it points at.
		if entries, err = os.ReadDir(s.cacheDir()); err != nil {
			errs = append(errs, err)
		}
	}
	for _, e := range entries {
		p := filepath.Join(s.cacheDir(), e.Name())
		var c struct {
			Digest   v1.Hash `json:"digest"`
			Manifest v1.Hash `json:"manifest"`
		}
		b, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(b, &c)
		}
		if err == nil && (liveBlobs[c.Digest.Hex] && c.Digest.Hex != "" || liveBlobs[c.Manifest.Hex] && c.Manifest.Hex != "") {
			continue
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	return nil
}

// readBlobAs reads the file at path and parses it with parse.
func readBlobAs[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(bytes.NewReader(raw))
}

// mountedLayers lists the unpacked layers under layerDir that a mounted
// overlay uses as a lower directory, by their digest's hex.
func mountedLayers(layerDir string) (map[string]bool, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("overlay"))
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	prefix := layerDir + string(filepath.Separator)
	for _, m := range mounts {
		for _, opt := range strings.Split(m.VFSOptions, ",") {
			lower, ok := strings.CutPrefix(opt, "lowerdir=")
			if !ok {
				continue
			}
			for _, dir := range strings.Split(lower, ":") {
				if rest, ok := strings.CutPrefix(dir, prefix); ok {
					used[strings.SplitN(rest, string(filepath.Separator), 2)[0]] = true
				}
			}
		}
	}
	return used, nil
}
