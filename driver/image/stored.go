package image

import (
	"bytes"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// storedImage is an image whose manifest, config and layer blobs are all in
// the store.
type storedImage struct {
	Digest    v1.Hash // of the manifest
	MediaType types.MediaType
	Size      int64
	Manifest  *v1.Manifest
	ID        v1.Hash // of the config
	Config    *v1.ConfigFile
	// RepoDigest is what a pulled image's reference resolved to.
	RepoDigest v1.Hash
	// BuildKey is a built image's build cache key (resource build_key).
	BuildKey string
}

// loadImage reads a stored manifest and its config and checks that every
// blob they name is present, so what it returns can be unpacked.
func (s *Store) loadImage(digest v1.Hash) (*storedImage, error) {
	raw, err := s.readBlob(digest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", digest, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", digest, err)
	}
	mt := m.MediaType
	if mt == "" {
		mt = types.OCIManifestSchema1
	}
	if mt != types.OCIManifestSchema1 && mt != types.DockerManifestSchema2 {
		return nil, fmt.Errorf("manifest %s: media type %q is not an image manifest", digest, mt)
	}
	rawCfg, err := s.readBlob(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", digest, err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s: manifest lists %d layers but its config %d", digest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	for i, l := range m.Layers {
		if _, err := layerCompression(l.MediaType); err != nil {
			return nil, fmt.Errorf("image %s: layer %d: %w", digest, i, err)
		}
		if len(l.URLs) > 0 {
			return nil, fmt.Errorf("image %s: layer %d is a foreign layer (fetched from %s); berth imports self-contained images only", digest, i, l.URLs[0])
		}
		fi, err := os.Stat(s.blobPath(l.Digest))
		if err != nil {
			return nil, fmt.Errorf("image %s: layer %s: %w", digest, l.Digest, err)
		}
		if fi.Size() != l.Size {
			return nil, fmt.Errorf("image %s: layer %s is %d bytes, the manifest says %d", digest, l.Digest, fi.Size(), l.Size)
		}
	}
	return &storedImage{Digest: digest, MediaType: mt, Size: int64(len(raw)), Manifest: m, ID: m.Config.Digest, Config: cfg}, nil
}

// compression is how a layer blob is encoded.
type compression int

const (
	uncompressed compression = iota
	gzipped
)

// layerCompression maps a layer media type to its encoding; zstd and
// anything that is not a layer are refused at import, not at container start.
func layerCompression(mt types.MediaType) (compression, error) {
	switch mt {
	case types.OCIUncompressedLayer, types.OCIUncompressedRestrictedLayer, types.DockerUncompressedLayer:
		return uncompressed, nil
	case types.OCILayer, types.OCIRestrictedLayer, types.DockerLayer, types.DockerForeignLayer:
		return gzipped, nil
	case types.OCILayerZStd:
		return 0, fmt.Errorf("zstd-compressed layers are not supported; re-export the image with gzip layers")
	}
	return 0, fmt.Errorf("media type %q is not an image layer", mt)
}
