package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// archiveCache is a cache entry: an archive file's identity → its image.
type archiveCache struct {
	Manifest v1.Hash `json:"manifest"`
}

// importArchive stores the image of a docker save tarball or an OCI layout
// tar. Which one is told by the entries: an OCI layout has oci-layout and
// index.json (docker 25 and later write both kinds of entries, and the OCI
// ones keep the registry's digests), a docker save has manifest.json. name
// picks the image when the archive holds several.
func (s *Store) importArchive(archive, name string) (*storedImage, error) {
	abs, err := filepath.Abs(archive)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, sourceError("archive", archive, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, sourceError("archive", archive, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("archive %q is a directory; archive takes a tar file (docker save -o FILE IMAGE), and rootfs a directory", archive)
	}
	// The file's identity stands for its content, as make's timestamps
	// do: re-planning an unchanged multi-gigabyte archive reads nothing.
	st := fi.Sys().(*syscall.Stat_t)
	key := cacheKey("archive", abs, name, fmt.Sprintf("%d %d %d.%d %d.%d %d", st.Dev, st.Ino, st.Size,
		st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec))
	var c archiveCache
	if s.readCache(key, &c) {
		if img, err := s.loadImage(c.Manifest); err == nil {
			return img, nil
		}
	}

	entries, err := scanTar(f)
	if err != nil {
		return nil, fmt.Errorf("archive %q is not a readable tar: %w", archive, err)
	}
	var img *storedImage
	switch {
	case entries["oci-layout"] != nil && entries["index.json"] != nil:
		img, err = s.importOCIArchive(f, name)
	case entries["manifest.json"] != nil:
		img, err = s.importDockerArchive(f, entries, name)
	default:
		err = errors.New("it holds neither manifest.json (docker save) nor oci-layout and index.json (an OCI layout)")
	}
	if err != nil {
		return nil, fmt.Errorf("archive %q: %w", archive, err)
	}
	s.writeCache(key, archiveCache{Manifest: img.Digest})
	return img, nil
}

// scanTar lists the entries of a tar by their cleaned names. Reading an
// os.File, the tar reader seeks over file contents.
func scanTar(f *os.File) (map[string]*tar.Header, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, err
		}
		entries[archiveName(hdr.Name)] = hdr
	}
}

// archiveName cleans a name inside an image archive ("./manifest.json",
// "/blobs/sha256/…") to the form the archive's own files refer to.
func archiveName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

// importDockerArchive stores the image of a docker save tarball. Its layers
// are kept as they are in the archive (docker writes them uncompressed,
// other tools gzipped), under an OCI manifest berth writes: docker save has
// no manifest of its own, and the config, hence the image ID, is kept
// byte for byte.
func (s *Store) importDockerArchive(f *os.File, entries map[string]*tar.Header, name string) (*storedImage, error) {
	rawManifest, err := readTarEntry(f, entries, "manifest.json")
	if err != nil {
		return nil, err
	}
	var m tarball.Manifest
	if err := json.Unmarshal(rawManifest, &m); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	desc, err := pickDocker(m, name)
	if err != nil {
		return nil, err
	}
	rawCfg, err := readTarEntry(f, entries, desc.Config)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", desc.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(desc.Layers) {
		return nil, fmt.Errorf("manifest.json lists %d layers but the config %d", len(desc.Layers), len(cfg.RootFS.DiffIDs))
	}
	cfgDigest, cfgSize, err := s.putBlob(bytes.NewReader(rawCfg), v1.Hash{})
	if err != nil {
		return nil, err
	}

	// One pass over the archive stores every layer it lists.
	wanted := map[string]bool{}
	layerNames := make([]string, len(desc.Layers))
	for i, l := range desc.Layers {
		if layerNames[i], err = resolveTarLink(entries, archiveName(l)); err != nil {
			return nil, err
		}
		wanted[layerNames[i]] = true
	}
	stored := map[string]v1.Descriptor{}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	tr := tar.NewReader(f)
	for len(stored) < len(wanted) {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("reading layers: %w", err)
		}
		n := archiveName(hdr.Name)
		if !wanted[n] || hdr.Typeflag != tar.TypeReg {
			continue
		}
		if _, done := stored[n]; done {
			continue
		}
		if stored[n], err = s.putLayer(tr); err != nil {
			return nil, fmt.Errorf("layer %s: %w", n, err)
		}
	}

	man := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: cfgSize, Digest: cfgDigest},
	}
	for i, n := range layerNames {
		d := stored[n]
		// An uncompressed layer's digest is its diff ID; checking it
		// now costs nothing and fails the plan, not the apply.
		if d.MediaType == types.OCIUncompressedLayer && d.Digest != cfg.RootFS.DiffIDs[i] {
			return nil, fmt.Errorf("layer %s has digest %s but the config says %s", n, d.Digest, cfg.RootFS.DiffIDs[i])
		}
		man.Layers = append(man.Layers, d)
	}
	digest, _, err := s.putJSON(man)
	if err != nil {
		return nil, err
	}
	return s.loadImage(digest)
}

// pickDocker chooses the image of a docker save manifest.json.
func pickDocker(m tarball.Manifest, name string) (*tarball.Descriptor, error) {
	switch len(m) {
	case 0:
		return nil, errors.New("manifest.json lists no image")
	case 1:
		return &m[0], nil
	}
	var tags []string
	for i := range m {
		for _, t := range m[i].RepoTags {
			if t == name || t == name+":latest" {
				return &m[i], nil
			}
			tags = append(tags, t)
		}
	}
	return nil, fmt.Errorf("it holds %d images (%s) and none is tagged %q; set the image's name to one of the tags, or save one image per archive", len(m), strings.Join(tags, ", "), name)
}

// putLayer stores a layer blob as it is, telling gzip from a plain tar by
// its first bytes.
func (s *Store) putLayer(r io.Reader) (v1.Descriptor, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, _ := br.Peek(4)
	mt := types.OCIUncompressedLayer
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		mt = types.OCILayer
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return v1.Descriptor{}, errors.New("zstd-compressed layers are not supported; save the image with gzip or uncompressed layers")
	}
	digest, size, err := s.putBlob(br, v1.Hash{})
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Size: size, Digest: digest}, nil
}

// resolveTarLink follows symbolic and hard links between the entries of an
// archive (docker save links identical layers to one another).
func resolveTarLink(entries map[string]*tar.Header, name string) (string, error) {
	for range 16 {
		hdr := entries[name]
		switch {
		case hdr == nil:
			return "", fmt.Errorf("entry %s is missing", name)
		case hdr.Typeflag == tar.TypeReg:
			return name, nil
		case hdr.Typeflag == tar.TypeSymlink:
			name = archiveName(path.Join(path.Dir(name), hdr.Linkname))
		case hdr.Typeflag == tar.TypeLink:
			name = archiveName(hdr.Linkname)
		default:
			return "", fmt.Errorf("entry %s is not a file", name)
		}
	}
	return "", fmt.Errorf("entry %s: too many links", name)
}

// readTarEntry reads one small entry of an archive.
func readTarEntry(f *os.File, entries map[string]*tar.Header, name string) ([]byte, error) {
	name, err := resolveTarLink(entries, archiveName(name))
	if err != nil {
		return nil, err
	}
	if entries[name].Size > maxMetadataBlob {
		return nil, fmt.Errorf("entry %s: larger than %d bytes", name, maxMetadataBlob)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("entry %s: %w", name, err)
		}
		if archiveName(hdr.Name) == name && hdr.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, maxMetadataBlob))
		}
	}
}

// importOCIArchive stores the image of an OCI layout tar. The layout is
// unpacked to a temporary directory and read there; its blobs are copied
// into the store verbatim and checked against their digests, so the image
// keeps the digest it had in its registry.
func (s *Store) importOCIArchive(f *os.File, name string) (*storedImage, error) {
	dir, err := os.MkdirTemp(s.tmpDir(), "oci-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := extractPlain(f, dir); err != nil {
		return nil, err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	var found []ociCandidate
	if err := collectImages(ii, "", 0, &found); err != nil {
		return nil, err
	}
	desc, err := pickOCI(found, name)
	if err != nil {
		return nil, err
	}
	copyBlob := func(h v1.Hash) error {
		if err := checkHash(h); err != nil {
			return err
		}
		bf, err := os.Open(filepath.Join(dir, "blobs", h.Algorithm, h.Hex))
		if err != nil {
			return fmt.Errorf("blob %s: %w", h, err)
		}
		defer bf.Close()
		if _, _, err := s.putBlob(bf, h); err != nil {
			return fmt.Errorf("blob %s: %w", h, err)
		}
		return nil
	}
	img, err := ii.Image(desc.Digest)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if _, err := layerCompression(l.MediaType); err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if err := copyBlob(l.Digest); err != nil {
			return nil, err
		}
	}
	if err := copyBlob(m.Config.Digest); err != nil {
		return nil, err
	}
	if err := copyBlob(desc.Digest); err != nil {
		return nil, err
	}
	return s.loadImage(desc.Digest)
}

// checkHash refuses digests berth does not store, and those whose hex part
// could make a path of its own.
func checkHash(h v1.Hash) error {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 || strings.Trim(h.Hex, "0123456789abcdef") != "" {
		return fmt.Errorf("digest %q: want sha256 and 64 lowercase hex digits", h.String())
	}
	return nil
}

// ociCandidate is an image manifest found in an OCI layout.
type ociCandidate struct {
	desc v1.Descriptor
	ref  string
}

// collectImages lists the image manifests an index reaches, descending into
// nested indexes (multi-platform images) and skipping attestations.
func collectImages(ii v1.ImageIndex, ref string, depth int, out *[]ociCandidate) error {
	if depth > 4 {
		return errors.New("indexes nested too deep")
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		r := ref
		if n := d.Annotations["io.containerd.image.name"]; n != "" {
			r = n
		} else if n := d.Annotations["org.opencontainers.image.ref.name"]; n != "" && r == "" {
			r = n
		}
		if d.Annotations["vnd.docker.reference.type"] != "" {
			continue
		}
		switch d.MediaType {
		case types.OCIManifestSchema1, types.DockerManifestSchema2:
			if d.Platform != nil && (d.Platform.OS != "linux" || d.Platform.Architecture != runtime.GOARCH) {
				continue
			}
			*out = append(*out, ociCandidate{desc: d, ref: r})
		case types.OCIImageIndex, types.DockerManifestList:
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			if err := collectImages(child, r, depth+1, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// pickOCI chooses the image of an OCI layout: the only one for this
// platform, or the one named like the image.
func pickOCI(found []ociCandidate, name string) (v1.Descriptor, error) {
	switch len(found) {
	case 0:
		return v1.Descriptor{}, fmt.Errorf("it holds no image for linux/%s", runtime.GOARCH)
	case 1:
		return found[0].desc, nil
	}
	var refs []string
	for _, c := range found {
		if c.ref == name || c.ref == name+":latest" {
			return c.desc, nil
		}
		refs = append(refs, c.ref)
	}
	return v1.Descriptor{}, fmt.Errorf("it holds %d images for linux/%s (%s) and none is named %q; set the image's name to one of them, or save one image per archive", len(found), runtime.GOARCH, strings.Join(refs, ", "), name)
}

// extractPlain unpacks the directories and regular files of a tar into
// dir and nothing else: an OCI layout needs no links, so none can be
// planted to redirect a later write.
func extractPlain(f *os.File, dir string) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := cleanEntry(hdr.Name)
		if err != nil {
			return err
		}
		if rel == "" {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
