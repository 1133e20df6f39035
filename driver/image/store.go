// Package image is berth's image store and the driver of the image kind.
//
// The store is content-addressed and lives under one root directory:
//
//	blobs/sha256/HEX       manifests, configs and layers (an OCI image layout,
//	oci-layout, index.json with index.json derived from the records)
//	layers/sha256/DIFFID/  each layer unpacked once, shared by every image
//	                       that has it; the overlay lower directories
//	images.json            the records: berth image name → manifest digest
//	cache/                 source fingerprints → digests, so planning an
//	                       unchanged archive or directory does not re-read it
//	tmp/                   work in progress, renamed into place when whole
//
// Images come from a registry (registry.go), a local archive (docker save
// or an OCI layout tar) or a root filesystem directory. Archives and
// directories are imported at plan time (Preview), which is harmless
// because content-addressed, so a plan already knows the digest; a pulled
// image's reference is resolved at plan time and its manifests stored,
// its layers downloaded by Create.
//
// The agent wires the Store in as the image kind's driver.Driver and as the
// container driver's driver.Images. It imports resource and driver only.
package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/singleflight"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
	"github.com/seed-e88ffcd2/berth/resource"
)

// Config configures a Store.
type Config struct {
	// Root is the directory holding the store; it is created if missing.
	// Two stores must not share a root unless they are the same agent's
	// (processes sharing a root coordinate through file locks).
	Root string

	// InsecureRegistries may be spoken to over plain HTTP, as "host" or
	// "host:port"; loopback registries (127.0.0.0/8, ::1, localhost)
	// always may. Every other registry is reached over HTTPS only.
	InsecureRegistries []string
	// PullParallelism is how many blobs one pull downloads at once;
	// 0 means 4.
	PullParallelism int
	// Keychain finds registry credentials; nil means the Docker config
	// file and its credential helpers (authn.DefaultKeychain).
	Keychain authn.Keychain
	// Transport carries registry requests; nil means go-containerregistry's
	// default (proxy from the environment, TLS verification on). Plain-HTTP
	// requests to registries not allowed them are refused before it sees
	// them.
	Transport http.RoundTripper
}

// DefaultConfig is the store of an agent with its default places.
func DefaultConfig() Config {
	return Config{Root: "/var/lib/berth/images"}
}

// Store is the image store. It is safe for concurrent use by many
// goroutines and, through file locks, by several processes.
type Store struct {
	root string
	reg  *registries
	// unpacking makes concurrent callers that need the same layer wait for
	// one unpack instead of each unpacking it.
	unpacking singleflight.Group
	// builder builds images with a build block (SetBuilder); nil refuses
	// them.
	builder Builder
}

var (
	_ driver.Driver    = (*Store)(nil)
	_ driver.Previewer = (*Store)(nil)
	_ driver.Images    = (*Store)(nil)
	_ driver.Preparer  = (*Store)(nil)
)

// New opens the store at cfg.Root, creating its layout if needed.
func New(cfg Config) (*Store, error) {
	if cfg.Root == "" {
		return nil, errors.New("image store: Root is empty")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	s := &Store{root: root, reg: newRegistries(cfg)}
	for _, dir := range []string{s.blobDir(), s.layerDir(), s.cacheDir(), s.tmpDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	// The root itself must be traversable by containers' users: overlay
	// lower directories are looked up with the caller's credentials.
	if err := os.Chmod(root, 0o711); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if err := os.Chmod(s.layerDir(), 0o711); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if err := os.Chmod(filepath.Dir(s.layerDir()), 0o711); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	layoutFile := filepath.Join(root, "oci-layout")
	if _, err := os.Stat(layoutFile); errors.Is(err, os.ErrNotExist) {
		if err := atomicfile.WriteFile(layoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	unlock, err := s.lock(lockRecords, unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer unlock()
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	// index.json is derived from the records; rewriting it repairs one
	// that a crash left behind the records.
	if err := s.writeIndex(recs); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) blobDir() string  { return filepath.Join(s.root, "blobs", "sha256") }
func (s *Store) layerDir() string { return filepath.Join(s.root, "layers", "sha256") }
func (s *Store) cacheDir() string { return filepath.Join(s.root, "cache") }
func (s *Store) tmpDir() string   { return filepath.Join(s.root, "tmp") }

// layerPath is where the layer with the given diff ID is unpacked.
func (s *Store) layerPath(diffID v1.Hash) string { return filepath.Join(s.layerDir(), diffID.Hex) }

// The store's two locks, taken in this order. Every operation that reads or
// writes content holds lockContent shared; garbage collection holds it
// exclusively, so it never removes what an import is about to record.
// lockRecords serialises the read-modify-write of images.json.
const (
	lockContent = "content.lock"
	lockRecords = "records.lock"
)

// lock takes a flock on one of the store's lock files. Each call opens its
// own file description, so goroutines of one process exclude each other
// exactly as processes do.
func (s *Store) lock(name string, how int) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.root, name), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image store: lock %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}

// recordsVersion is the version of images.json this code writes. Readers
// accept every older version.
const recordsVersion = 1

// records is the content of images.json.
type records struct {
	Version int                `json:"version"`
	Images  map[string]*record `json:"images"`
}

// record is one named image.
type record struct {
	// Digest is the manifest digest, ID the config digest.
	Digest v1.Hash `json:"digest"`
	ID     v1.Hash `json:"id"`
	// MediaType and Size describe the manifest for index.json.
	MediaType types.MediaType `json:"mediaType"`
	Size      int64           `json:"size"`
	// Owner is who recorded the name (resource.Owner); empty for a name
	// an older berth recorded, or one berth image pull recorded.
	Owner string `json:"owner,omitempty"`
	// RepoDigest is, for a pulled image, what its reference resolved to
	// in the registry: a multi-platform index (kept, so a plan pinned to
	// it needs no registry), or the manifest itself.
	RepoDigest v1.Hash `json:"repoDigest,omitzero"`
}

func (s *Store) recordsPath() string { return filepath.Join(s.root, "images.json") }

func (s *Store) readRecords() (*records, error) {
	recs := &records{Version: recordsVersion, Images: map[string]*record{}}
	b, err := os.ReadFile(s.recordsPath())
	if errors.Is(err, os.ErrNotExist) {
		return recs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if err := json.Unmarshal(b, recs); err != nil {
		return nil, fmt.Errorf("image store: %s: %w", s.recordsPath(), err)
	}
	if recs.Version > recordsVersion {
		return nil, fmt.Errorf("image store: %s has version %d, written by a newer berth (this one reads up to %d)", s.recordsPath(), recs.Version, recordsVersion)
	}
	if recs.Images == nil {
		recs.Images = map[string]*record{}
	}
	recs.Version = recordsVersion
	return recs, nil
}

// updateRecords applies fn to the records and writes them, and index.json,
// if fn reports a change. The caller holds lockContent.
func (s *Store) updateRecords(fn func(*records) bool) error {
	unlock, err := s.lock(lockRecords, unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	recs, err := s.readRecords()
	if err != nil {
		return err
	}
	if !fn(recs) {
		return nil
	}
	b, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.recordsPath(), b, 0o644); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	return s.writeIndex(recs)
}

// writeIndex makes index.json list every recorded image under its name, so
// the store is an OCI layout other tools (skopeo, umoci) can read.
func (s *Store) writeIndex(recs *records) error {
	names := make([]string, 0, len(recs.Images))
	for n := range recs.Images {
		names = append(names, n)
	}
	sort.Strings(names)
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for _, n := range names {
		r := recs.Images[n]
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType:   r.MediaType,
			Size:        r.Size,
			Digest:      r.Digest,
			Annotations: map[string]string{"org.opencontainers.image.ref.name": n},
		})
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(s.root, "index.json")
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
		return nil
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

// lookup finds the record of a manifest digest, under any name.
func (s *Store) lookup(digest v1.Hash) (*record, error) {
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	for _, r := range recs.Images {
		if r.Digest == digest {
			return r, nil
		}
	}
	return nil, fmt.Errorf("image %s is not in the store: %w", digest, resource.ErrNotFound)
}
