package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// GC removes every blob and unpacked layer that no record needs, with the
// cache entries that point at them and whatever work a crash left in tmp.
// It holds the store exclusively, so no import runs meanwhile: an image
// previewed but not yet created loses its blobs and is imported again by
// Create, which costs time but never correctness.
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
	for name, r := range recs.Images {
		// Read without the checks of loadImage: a damaged image must
		// still keep what it references, so nothing is taken on a guess.
		raw, err := os.ReadFile(s.blobPath(r.Digest))
		if err != nil {
			return fmt.Errorf("gc: image %s: %w", name, err)
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("gc: image %s: %w", name, err)
		}
		liveBlobs[r.Digest.Hex] = true
		liveBlobs[m.Config.Digest.Hex] = true
		for _, l := range m.Layers {
			liveBlobs[l.Digest.Hex] = true
		}
		rawCfg, err := os.ReadFile(s.blobPath(m.Config.Digest))
		if err != nil {
			return fmt.Errorf("gc: image %s: %w", name, err)
		}
		cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
		if err != nil {
			return fmt.Errorf("gc: image %s: %w", name, err)
		}
		for _, d := range cfg.RootFS.DiffIDs {
			liveLayers[d.Hex] = true
		}
	}

	var errs []error
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
	sweep(s.blobDir(), liveBlobs)
	sweep(s.layerDir(), liveLayers)
	sweep(s.tmpDir(), nil)

	entries, err := os.ReadDir(s.cacheDir())
	if err != nil {
		errs = append(errs, err)
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
