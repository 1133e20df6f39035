package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// Moving images in and out of the store as files: berth image save, load
// and import.
//
// save writes what Docker 25 and later write for docker save: an OCI
// image layout (oci-layout, index.json, blobs/sha256/…) that also carries
// docker's manifest.json and repositories, so docker load of any version,
// podman load and skopeo read it; --format oci leaves docker's files out.
// The blobs are the store's own, byte for byte, so an image keeps its
// digest through save and load.
//
// load reads those, the older docker save layout (<id>/layer.tar,
// <config>.json, manifest.json, repositories) and OCI layouts other tools
// write. Nothing enters the store until the whole archive has been read
// and checked: every blob against its digest and size, every layer
// unpacked (with the extraction checks of unpack.go) and its diff ID
// checked. Only then are the blobs and layers renamed into place and the
// names recorded, so a damaged or hostile archive leaves the store as it
// was.

// Archive formats of berth image save.
const (
	FormatDocker = "docker"
	FormatOCI    = "oci"
)

// Save writes the images refs name to w as one archive. Each is recorded
// in the archive under the name it was given (with :latest added to a
// name without a tag), or under no name when given by digest.
func (s *Store) Save(w io.Writer, refs []string, format string) error {
	if format == "" {
		format = FormatDocker
	}
	if format != FormatDocker && format != FormatOCI {
		return fmt.Errorf("archive format %q: use docker or oci", format)
	}
	if len(refs) == 0 {
		return errors.New("save: name at least one image")
	}
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	type saved struct {
		img  *storedImage
		tags []string
	}
	var imgs []*saved
	byDigest := map[v1.Hash]*saved{}
	for _, ref := range refs {
		digest, found, err := s.resolveRef(ref)
		if err != nil {
			return err
		}
		sv := byDigest[digest]
		if sv == nil {
			img, err := s.loadImage(digest)
			if err != nil {
				return fmt.Errorf("image %s: %w", ref, err)
			}
			sv = &saved{img: img}
			byDigest[digest] = sv
			imgs = append(imgs, sv)
		}
		if found == "" || isDigest(ref) || strings.Contains(ref, "@") {
			continue
		}
		tag := found
		if !hasTag(tag) {
			tag += ":latest"
		}
		if _, err := name.NewTag(tag, name.WeakValidation); err != nil {
			return fmt.Errorf("image %s: %q is not a name docker can load (%v); tag it with one first (berth image tag)", ref, tag, err)
		}
		if !slices.Contains(sv.tags, tag) {
			sv.tags = append(sv.tags, tag)
		}
	}

	tw := tar.NewWriter(w)
	written := map[string]bool{}
	file := func(name string, data []byte) error {
		if written[name] {
			return nil
		}
		written[name] = true
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX})
	}
	blob := func(h v1.Hash) error {
		name := "blobs/sha256/" + h.Hex
		if written[name] {
			return nil
		}
		written[name] = true
		f, err := os.Open(s.blobPath(h))
		if err != nil {
			return fmt.Errorf("blob %s: %w", h, err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: fi.Size(), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		// Checked as it is copied: a blob damaged on disk is not passed on.
		hw := sha256.New()
		if _, err := io.Copy(io.MultiWriter(tw, hw), f); err != nil {
			return err
		}
		if hex.EncodeToString(hw.Sum(nil)) != h.Hex {
			return fmt.Errorf("blob %s in the store does not match its digest; remove the image and import it again", h)
		}
		return nil
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := dir(d); err != nil {
			return err
		}
	}
	if err := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	type dockerEntry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifestJSON []dockerEntry
	repositories := map[string]map[string]string{}
	for _, sv := range imgs {
		img := sv.img
		for _, l := range img.Manifest.Layers {
			if err := blob(l.Digest); err != nil {
				return err
			}
		}
		if err := blob(img.ID); err != nil {
			return err
		}
		if err := blob(img.Digest); err != nil {
			return err
		}
		desc := v1.Descriptor{MediaType: img.MediaType, Size: img.Size, Digest: img.Digest}
		if len(sv.tags) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		for _, t := range sv.tags {
			d := desc
			_, tagPart := splitTag(t)
			d.Annotations = map[string]string{
				// containerd's and Docker's full name, and the OCI
				// reference name (the tag, as Docker writes it).
				"io.containerd.image.name":          fullName(t),
				"org.opencontainers.image.ref.name": tagPart,
			}
			if format == FormatOCI {
				d.Annotations["org.opencontainers.image.ref.name"] = t
			}
			idx.Manifests = append(idx.Manifests, d)
		}
		e := dockerEntry{Config: "blobs/sha256/" + img.ID.Hex, RepoTags: sv.tags}
		if e.RepoTags == nil {
			e.RepoTags = []string{}
		}
		for _, l := range img.Manifest.Layers {
			e.Layers = append(e.Layers, "blobs/sha256/"+l.Digest.Hex)
		}
		manifestJSON = append(manifestJSON, e)
		for _, t := range sv.tags {
			repo, tag := splitTag(t)
			if repositories[repo] == nil {
				repositories[repo] = map[string]string{}
			}
			if n := len(img.Manifest.Layers); n > 0 {
				repositories[repo][tag] = img.Manifest.Layers[n-1].Digest.Hex
			}
		}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := file("index.json", b); err != nil {
		return err
	}
	if format == FormatDocker {
		if b, err = json.Marshal(manifestJSON); err != nil {
			return err
		}
		if err := file("manifest.json", b); err != nil {
			return err
		}
		if b, err = json.Marshal(repositories); err != nil {
			return err
		}
		if err := file("repositories", b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// splitTag splits NAME:TAG.
func splitTag(t string) (repo, tag string) {
	if i := strings.LastIndexByte(t, ':'); i > strings.LastIndexByte(t, '/') {
		return t[:i], t[i+1:]
	}
	return t, "latest"
}

// fullName is a name as containerd writes it: docker.io/library/x:tag
// for Docker Hub's short names.
func fullName(t string) string {
	ref, err := name.NewTag(t, name.WeakValidation)
	if err != nil {
		return t
	}
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + ref.Context().RepositoryStr() + ":" + ref.TagStr()
}

// familiar is a full name as docker shows it: busybox:latest for
// docker.io/library/busybox:latest.
func familiar(n string) string {
	n = strings.TrimPrefix(n, "docker.io/library/")
	n = strings.TrimPrefix(n, "index.docker.io/library/")
	n = strings.TrimPrefix(n, "index.docker.io/")
	return strings.TrimPrefix(n, "docker.io/")
}

// Loaded is an image berth image load or import stored.
type Loaded struct {
	Names  []string `json:"names"`
	Digest string   `json:"digest"`
	ID     string   `json:"id"`
}

// LoadOptions tune a load.
type LoadOptions struct {
	// Name records an image the archive leaves unnamed (there must be
	// exactly one).
	Name string
}

// loadStage is a load in progress: blobs written under tmp/, checked,
// then renamed into blobs/; layers unpacked under tmp/, renamed into
// layers/.
type loadStage struct {
	s      *Store
	dir    string
	blobs  map[v1.Hash]string // staged blob → its file
	layers map[v1.Hash]string // diff ID → unpacked directory
	order  []v1.Hash          // blobs in the order to commit (manifests last)
}

func (s *Store) newLoadStage() (*loadStage, error) {
	dir, err := os.MkdirTemp(s.tmpDir(), "load-")
	if err != nil {
		return nil, err
	}
	return &loadStage{s: s, dir: dir, blobs: map[v1.Hash]string{}, layers: map[v1.Hash]string{}}, nil
}

func (st *loadStage) abort() {
	for _, d := range st.layers {
		os.RemoveAll(d)
	}
	os.RemoveAll(st.dir)
}

// put stages what r yields as a blob; with want set (an OCI layout names
// its blobs by digest) the content must have that digest and, with size
// >= 0, that size.
func (st *loadStage) put(r io.Reader, want v1.Hash, size int64) (v1.Hash, int64, error) {
	f, err := os.CreateTemp(st.dir, "blob-")
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	if size >= 0 {
		r = io.LimitReader(r, size+1)
	}
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	switch {
	case size >= 0 && n != size:
		return v1.Hash{}, 0, fmt.Errorf("blob %s is %d bytes long, its descriptor says %d (a truncated or padded blob)", want, n, size)
	case want != (v1.Hash{}) && got != want:
		return v1.Hash{}, 0, fmt.Errorf("blob %s: %w: its content has digest %s", want, errMismatch, got)
	}
	if err := f.Sync(); err != nil {
		return v1.Hash{}, 0, err
	}
	if _, ok := st.blobs[got]; !ok {
		st.blobs[got] = f.Name()
		st.order = append(st.order, got)
	} else {
		os.Remove(f.Name())
	}
	return got, n, nil
}

// path is where a blob is: staged, or already in the store.
func (st *loadStage) path(h v1.Hash) string {
	if p, ok := st.blobs[h]; ok {
		return p
	}
	return st.s.blobPath(h)
}

func (st *loadStage) read(h v1.Hash) ([]byte, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	f, err := os.Open(st.path(h))
	if err != nil {
		return nil, fmt.Errorf("blob %s is not in the archive", h)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadataBlob+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetadataBlob {
		return nil, fmt.Errorf("blob %s: larger than %d bytes", h, maxMetadataBlob)
	}
	return b, nil
}

// check verifies a staged image and unpacks, under tmp/, each of its
// layers not unpacked yet.
func (st *loadStage) check(digest v1.Hash) (*storedImage, error) {
	raw, err := st.read(digest)
	if err != nil {
		return nil, err
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
	rawCfg, err := st.read(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("manifest %s lists %d layers but its config %d", digest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	for i, l := range m.Layers {
		if _, err := layerCompression(l.MediaType); err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if len(l.URLs) > 0 {
			return nil, fmt.Errorf("layer %s is a foreign layer (fetched from %s); berth loads self-contained images only", l.Digest, l.URLs[0])
		}
		if err := checkHash(l.Digest); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		fi, err := os.Stat(st.path(l.Digest))
		if err != nil {
			return nil, fmt.Errorf("layer %s is not in the archive", l.Digest)
		}
		if fi.Size() != l.Size {
			return nil, fmt.Errorf("layer %s is %d bytes, the manifest says %d (a truncated blob)", l.Digest, fi.Size(), l.Size)
		}
		diffID := cfg.RootFS.DiffIDs[i]
		if err := checkHash(diffID); err != nil {
			return nil, fmt.Errorf("layer %d: diff ID: %w", i, err)
		}
		if _, done := st.layers[diffID]; done {
			continue
		}
		if _, err := os.Stat(st.s.layerPath(diffID)); err == nil {
			continue
		}
		dir, err := st.s.unpackBlob(st.path(l.Digest), l.MediaType, diffID)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		st.layers[diffID] = dir
	}
	return &storedImage{Digest: digest, MediaType: mt, Size: int64(len(raw)), Manifest: m, ID: m.Config.Digest, Config: cfg}, nil
}

// commit renames the staged blobs into the store (manifests, staged last,
// last) and then the unpacked layers.
func (st *loadStage) commit() error {
	for _, h := range st.order {
		if st.s.hasBlob(h) {
			continue
		}
		if err := os.Chmod(st.blobs[h], 0o644); err != nil {
			return err
		}
		if err := os.Rename(st.blobs[h], st.s.blobPath(h)); err != nil {
			return err
		}
	}
	for diffID, dir := range st.layers {
		if err := os.Rename(dir, st.s.layerPath(diffID)); err != nil {
			if _, serr := os.Stat(st.s.layerPath(diffID)); serr != nil {
				return err
			}
		}
		delete(st.layers, diffID)
	}
	return nil
}

// Load stores every image of a docker save archive or an OCI layout tar
// and records the names it gives them. On any error the store is left
// as it was.
func (s *Store) Load(ctx context.Context, archive string, opts LoadOptions) ([]Loaded, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, sourceError("archive", archive, err)
	}
	defer f.Close()
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := s.newLoadStage()
	if err != nil {
		return nil, err
	}
	defer st.abort()
	images, err := s.stageArchive(ctx, f, st)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w; nothing was stored", archive, err)
	}
	if opts.Name != "" {
		if err := checkName(opts.Name); err != nil {
			return nil, err
		}
		var unnamed []*archived
		for _, a := range images {
			if len(a.names) == 0 {
				unnamed = append(unnamed, a)
			}
		}
		if len(unnamed) != 1 && len(images) != 1 {
			return nil, fmt.Errorf("archive %s holds %d images; a name can be given to one only", archive, len(images))
		}
		if len(unnamed) == 1 {
			unnamed[0].names = []string{opts.Name}
		} else {
			images[0].names = append(images[0].names, opts.Name)
		}
	}
	for _, a := range images {
		if len(a.names) == 0 {
			return nil, fmt.Errorf("archive %s: image %s has no name; give it one with -t NAME; nothing was stored", archive, a.digest)
		}
	}
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	for _, a := range images {
		for i, n := range a.names {
			n, err := NormalizeName(n)
			if err != nil {
				return nil, err
			}
			a.names[i] = n
			if err := ownedName(recs, n); err != nil {
				return nil, fmt.Errorf("archive %s: load it under another name (-t); nothing was stored: %w", archive, err)
			}
		}
	}
	var out []Loaded
	var imgs []*storedImage
	for _, a := range images {
		img, err := st.check(a.digest)
		if err != nil {
			return nil, fmt.Errorf("archive %s: %w; nothing was stored", archive, err)
		}
		imgs = append(imgs, img)
	}
	if err := st.commit(); err != nil {
		return nil, err
	}
	err = s.updateRecords(func(recs *records) bool {
		for i, a := range images {
			img := imgs[i]
			for _, n := range a.names {
				recs.Images[n] = &record{Digest: img.Digest, ID: img.ID, MediaType: img.MediaType, Size: img.Size}
				dropAliases(recs, n)
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	for i, a := range images {
		out = append(out, Loaded{Names: a.names, Digest: imgs[i].Digest.String(), ID: imgs[i].ID.String()})
	}
	return out, nil
}

// archived is an image found in an archive.
type archived struct {
	digest v1.Hash
	names  []string
}

// stageArchive stages every blob of an archive and returns its images.
func (s *Store) stageArchive(ctx context.Context, f *os.File, st *loadStage) ([]*archived, error) {
	entries, err := scanTar(f)
	if err != nil {
		return nil, fmt.Errorf("not a readable tar: %w", err)
	}
	for n, hdr := range entries {
		if _, err := cleanEntry(hdr.Name); err != nil {
			return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink {
			if _, err := resolveTarLink(entries, n); err != nil {
				return nil, fmt.Errorf("entry %q links to %q: %w", hdr.Name, hdr.Linkname, err)
			}
		}
	}
	switch {
	case entries["oci-layout"] != nil && entries["index.json"] != nil:
		return s.stageOCI(ctx, f, entries, st)
	case entries["manifest.json"] != nil:
		return s.stageDocker(ctx, f, entries, st)
	}
	return nil, errors.New("it holds neither manifest.json (docker save) nor oci-layout and index.json (an OCI layout)")
}

// stageOCI stages the images of an OCI layout (Docker 25's docker save
// among them, whose manifest.json gives the names).
func (s *Store) stageOCI(ctx context.Context, f *os.File, entries map[string]*tar.Header, st *loadStage) ([]*archived, error) {
	// Every blob the layout holds is staged once, checked against the
	// digest its name promises; what the images do not need is left
	// behind with the stage.
	if err := eachEntry(f, func(n string, hdr *tar.Header, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		hexPart, ok := strings.CutPrefix(n, "blobs/sha256/")
		if !ok || hdr.Typeflag != tar.TypeReg {
			return nil
		}
		h := v1.Hash{Algorithm: "sha256", Hex: hexPart}
		if err := checkHash(h); err != nil {
			return fmt.Errorf("entry %s: %w", n, err)
		}
		if _, _, err := st.put(r, h, hdr.Size); err != nil {
			return fmt.Errorf("entry %s: %w", n, err)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rawIdx, err := readTarEntry(f, entries, "index.json")
	if err != nil {
		return nil, err
	}
	// Names docker's manifest.json gives, by config digest.
	tags := map[v1.Hash][]string{}
	if entries["manifest.json"] != nil {
		raw, err := readTarEntry(f, entries, "manifest.json")
		if err != nil {
			return nil, err
		}
		var m []struct {
			Config   string
			RepoTags []string
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("manifest.json: %w", err)
		}
		for _, e := range m {
			if h, ok := strings.CutPrefix(archiveName(e.Config), "blobs/sha256/"); ok {
				tags[v1.Hash{Algorithm: "sha256", Hex: h}] = e.RepoTags
			}
		}
	}
	var out []*archived
	found := map[v1.Hash]*archived{}
	var walk func(raw []byte, ref string, depth int) error
	walk = func(raw []byte, ref string, depth int) error {
		if depth > 4 {
			return errors.New("indexes nested too deep")
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
		for _, d := range idx.Manifests {
			r := ref
			if n := d.Annotations["io.containerd.image.name"]; n != "" {
				r = familiar(n)
			} else if n := d.Annotations["org.opencontainers.image.ref.name"]; n != "" && r == "" && (strings.ContainsAny(n, ":/")) {
				r = familiar(n)
			}
			if d.Annotations["vnd.docker.reference.type"] != "" {
				continue
			}
			if err := checkHash(d.Digest); err != nil {
				return err
			}
			switch d.MediaType {
			case types.OCIManifestSchema1, types.DockerManifestSchema2:
				if d.Platform != nil && (d.Platform.OS != "linux" || d.Platform.Architecture != runtime.GOARCH) {
					continue
				}
				if _, ok := st.blobs[d.Digest]; !ok && !s.hasBlob(d.Digest) {
					return fmt.Errorf("manifest %s is not in the archive", d.Digest)
				}
				fi, err := os.Stat(st.path(d.Digest))
				if err != nil {
					return err
				}
				if fi.Size() != d.Size {
					return fmt.Errorf("manifest %s is %d bytes, the index says %d", d.Digest, fi.Size(), d.Size)
				}
				a := found[d.Digest]
				if a == nil {
					a = &archived{digest: d.Digest}
					found[d.Digest] = a
					out = append(out, a)
				}
				if r != "" && !slices.Contains(a.names, r) {
					a.names = append(a.names, r)
				}
			case types.OCIImageIndex, types.DockerManifestList:
				child, err := st.read(d.Digest)
				if err != nil {
					return err
				}
				if err := walk(child, r, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(rawIdx, "", 0); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("it holds no image for linux/%s", runtime.GOARCH)
	}
	if len(tags) > 0 {
		for _, a := range out {
			raw, err := st.read(a.digest)
			if err != nil {
				return nil, err
			}
			m, err := v1.ParseManifest(bytes.NewReader(raw))
			if err != nil {
				return nil, fmt.Errorf("manifest %s: %w", a.digest, err)
			}
			if t, ok := tags[m.Config.Digest]; ok {
				a.names = nil
				for _, n := range t {
					a.names = append(a.names, familiar(n))
				}
			}
		}
	}
	return out, nil
}

// stageDocker stages the images of a docker save archive in the layout
// Docker wrote before version 25: a directory per layer, the config as
// <id>.json, manifest.json naming them. It has no manifests: berth writes
// one per image, keeping the layers as they are (uncompressed, as docker
// writes them) and the config byte for byte.
func (s *Store) stageDocker(ctx context.Context, f *os.File, entries map[string]*tar.Header, st *loadStage) ([]*archived, error) {
	raw, err := readTarEntry(f, entries, "manifest.json")
	if err != nil {
		return nil, err
	}
	var m []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	if len(m) == 0 {
		return nil, errors.New("manifest.json lists no image")
	}
	// Every file manifest.json names, by its resolved entry name.
	wanted := map[string]bool{}
	for _, e := range m {
		for _, n := range append([]string{e.Config}, e.Layers...) {
			resolved, err := resolveTarLink(entries, archiveName(n))
			if err != nil {
				return nil, err
			}
			wanted[resolved] = true
		}
	}
	stored := map[string]v1.Descriptor{}
	if err := eachEntry(f, func(n string, hdr *tar.Header, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !wanted[n] || hdr.Typeflag != tar.TypeReg {
			return nil
		}
		br := bufio.NewReaderSize(r, 1<<16)
		magic, _ := br.Peek(4)
		mt := types.OCIUncompressedLayer
		switch {
		case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
			mt = types.OCILayer
		case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			return fmt.Errorf("entry %s: zstd-compressed layers are not supported; save the image with gzip or uncompressed layers", n)
		}
		h, size, err := st.put(br, v1.Hash{}, hdr.Size)
		if err != nil {
			return fmt.Errorf("entry %s: %w", n, err)
		}
		stored[n] = v1.Descriptor{MediaType: mt, Size: size, Digest: h}
		return nil
	}); err != nil {
		return nil, err
	}
	var out []*archived
	for _, e := range m {
		cfgName, _ := resolveTarLink(entries, archiveName(e.Config))
		cfgDesc, ok := stored[cfgName]
		if !ok {
			return nil, fmt.Errorf("config %s is not in the archive", e.Config)
		}
		rawCfg, err := st.read(cfgDesc.Digest)
		if err != nil {
			return nil, err
		}
		cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", e.Config, err)
		}
		if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
			return nil, fmt.Errorf("manifest.json lists %d layers but the config %d", len(e.Layers), len(cfg.RootFS.DiffIDs))
		}
		man := v1.Manifest{
			SchemaVersion: 2,
			MediaType:     types.OCIManifestSchema1,
			Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: cfgDesc.Size, Digest: cfgDesc.Digest},
		}
		for i, l := range e.Layers {
			n, _ := resolveTarLink(entries, archiveName(l))
			d, ok := stored[n]
			if !ok {
				return nil, fmt.Errorf("layer %s is not in the archive", l)
			}
			// An uncompressed layer's digest is its diff ID.
			if d.MediaType == types.OCIUncompressedLayer && d.Digest != cfg.RootFS.DiffIDs[i] {
				return nil, fmt.Errorf("layer %s has digest %s but the config says %s", l, d.Digest, cfg.RootFS.DiffIDs[i])
			}
			man.Layers = append(man.Layers, d)
		}
		b, err := json.Marshal(man)
		if err != nil {
			return nil, err
		}
		h, _, err := st.put(bytes.NewReader(b), v1.Hash{}, -1)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, t := range e.RepoTags {
			names = append(names, familiar(t))
		}
		out = append(out, &archived{digest: h, names: names})
	}
	return out, nil
}

// eachEntry calls fn with each entry of a tar, by its cleaned name.
func eachEntry(f *os.File, fn func(name string, hdr *tar.Header, r io.Reader) error) error {
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
		if err := fn(archiveName(hdr.Name), hdr, tr); err != nil {
			return err
		}
	}
}

// ImportOptions describe an image made from a root filesystem.
type ImportOptions struct {
	// Name is recorded for the image.
	Name string
	// Config is the image's config (CMD, ENV, …); nil is none.
	Config *v1.Config
	// Message is its history's comment.
	Message string
}

// Import makes an image whose single layer is a root filesystem: a tar
// (plain or gzipped, such as docker export writes) or a directory, as
// docker import does, and records opts.Name for it. The layer is unpacked
// and checked before anything enters the store.
func (s *Store) Import(ctx context.Context, src string, opts ImportOptions) (*Loaded, error) {
	n, err := NormalizeName(opts.Name)
	if err != nil {
		return nil, fmt.Errorf("import: give the image a name: %w", err)
	}
	opts.Name = n
	fi, err := os.Stat(src)
	if err != nil {
		return nil, sourceError("rootfs", src, err)
	}
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	if err := ownedName(recs, opts.Name); err != nil {
		return nil, fmt.Errorf("import under another name: %w", err)
	}
	st, err := s.newLoadStage()
	if err != nil {
		return nil, err
	}
	defer st.abort()
	var layer v1.Descriptor
	var diffID v1.Hash
	if fi.IsDir() {
		dir, err := filepath.EvalSymlinks(src)
		if err != nil {
			return nil, err
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarDir(pw, dir)) }()
		h, size, err := st.put(pr, v1.Hash{}, -1)
		pr.CloseWithError(err)
		if err != nil {
			return nil, fmt.Errorf("rootfs %s: %w", src, err)
		}
		layer, diffID = v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: size, Digest: h}, h
	} else {
		f, err := os.Open(src)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		br := bufio.NewReaderSize(f, 1<<16)
		magic, _ := br.Peek(512)
		mt := types.OCIUncompressedLayer
		switch {
		case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
			mt = types.OCILayer
		case len(magic) >= 262 && string(magic[257:262]) == "ustar":
		default:
			return nil, fmt.Errorf("%s is neither a tar nor a gzipped tar", src)
		}
		h, size, err := st.put(br, v1.Hash{}, -1)
		if err != nil {
			return nil, err
		}
		layer = v1.Descriptor{MediaType: mt, Size: size, Digest: h}
		if diffID, err = diffIDOf(st.path(h), mt); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
	}
	now := time.Now().UTC()
	cfg := v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: now},
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
		History:      []v1.History{{Created: v1.Time{Time: now}, CreatedBy: "berth image import " + filepath.Base(src), Comment: opts.Message}},
	}
	if opts.Config != nil {
		cfg.Config = *opts.Config
	}
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgDigest, _, err := st.put(bytes.NewReader(rawCfg), v1.Hash{}, -1)
	if err != nil {
		return nil, err
	}
	rawMan, err := json.Marshal(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawCfg)), Digest: cfgDigest},
		Layers:        []v1.Descriptor{layer},
	})
	if err != nil {
		return nil, err
	}
	digest, _, err := st.put(bytes.NewReader(rawMan), v1.Hash{}, -1)
	if err != nil {
		return nil, err
	}
	img, err := st.check(digest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; nothing was stored", src, err)
	}
	if err := st.commit(); err != nil {
		return nil, err
	}
	if err := s.Tag(opts.Name, img.Digest); err != nil {
		return nil, err
	}
	return &Loaded{Names: []string{opts.Name}, Digest: img.Digest.String(), ID: img.ID.String()}, nil
}

// diffIDOf is the digest of a layer blob's uncompressed content.
func diffIDOf(path string, mt types.MediaType) (v1.Hash, error) {
	f, err := os.Open(path)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	var r io.Reader = f
	if c, _ := layerCompression(mt); c == gzipped {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return v1.Hash{}, err
		}
		defer zr.Close()
		r = zr
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}
