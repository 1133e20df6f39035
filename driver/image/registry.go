package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/resource"
)

// Registries are spoken to with go-containerregistry's remote package: it
// knows the distribution protocol (token auth, redirects, retries, chunked
// uploads), and authn.DefaultKeychain reads the Docker config file and its
// credential helpers as docker does. berth adds three things of its own:
// which registries may be reached over plain HTTP, the host's platform,
// and writing into the store so that only whole, verified blobs appear.

// hostPlatform is the platform a multi-platform index is resolved to.
var hostPlatform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}

// defaultPullParallelism is how many blobs a pull downloads at once when
// the Config does not say.
const defaultPullParallelism = 4

// registries is the registry side of a Store.
type registries struct {
	insecure  map[string]bool
	transport http.RoundTripper
	keychain  authn.Keychain
	jobs      int
}

func newRegistries(cfg Config) *registries {
	r := &registries{insecure: map[string]bool{}, keychain: cfg.Keychain, jobs: cfg.PullParallelism}
	for _, h := range cfg.InsecureRegistries {
		if h = strings.TrimSpace(h); h != "" {
			r.insecure[h] = true
		}
	}
	if r.keychain == nil {
		r.keychain = authn.DefaultKeychain
	}
	if r.jobs <= 0 {
		r.jobs = defaultPullParallelism
	}
	base := cfg.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	r.transport = &httpsOnly{base: base, allowed: r.plainHTTPAllowed}
	return r
}

// plainHTTPAllowed says whether a registry (host or host:port) may be
// spoken to without TLS: loopback addresses always, others when listed.
func (r *registries) plainHTTPAllowed(hostport string) bool {
	if r.insecure[hostport] {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if r.insecure[host] || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrPlainHTTP is returned for a plain-HTTP request to a registry that may
// be reached over HTTPS only.
var ErrPlainHTTP = errors.New("plain HTTP refused")

// httpsOnly refuses plain-HTTP requests to registries not allowed them,
// before anything is dialled: go-containerregistry itself falls back to
// HTTP for private (RFC 1918) addresses, and a registry may redirect a
// blob download to a plain-HTTP URL.
type httpsOnly struct {
	base    http.RoundTripper
	allowed func(hostport string) bool
}

func (t *httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !t.allowed(req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%w to %s: berth speaks plain HTTP only to loopback registries and to those listed in BERTH_INSECURE_REGISTRIES", ErrPlainHTTP, req.URL.Host)
	}
	return t.base.RoundTrip(req)
}

// reference parses a registry reference, marking it insecure (HTTP
// allowed) only for registries that may be reached so.
func (s *Store) reference(raw string) (name.Reference, error) {
	ref, err := resource.ParsePullRef(raw)
	if err != nil {
		return nil, err
	}
	if s.reg.plainHTTPAllowed(ref.Context().RegistryStr()) {
		return name.ParseReference(raw, name.Insecure)
	}
	return ref, nil
}

func (s *Store) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(s.reg.transport),
		remote.WithAuthFromKeychain(s.reg.keychain),
		remote.WithPlatform(hostPlatform),
		remote.WithJobs(s.reg.jobs),
		remote.WithUserAgent("berth"),
	}
}

// registryError adds to an error from a registry what the user can do.
func registryError(ref name.Reference, err error) error {
	msg := err.Error()
	if !errors.Is(err, ErrPlainHTTP) && strings.Contains(msg, "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("%s: the registry %s answers in plain HTTP; berth speaks plain HTTP only to loopback registries and to those listed in BERTH_INSECURE_REGISTRIES: %w",
			ref, ref.Context().RegistryStr(), err)
	}
	return fmt.Errorf("%s: %w", ref, err)
}

// RemoteDigest asks the registry which digest a reference names now: a
// multi-platform index or an image manifest. A reference by digest is its
// own answer and is not looked up.
func (s *Store) RemoteDigest(ctx context.Context, raw string) (string, error) {
	ref, err := s.reference(raw)
	if err != nil {
		return "", err
	}
	p, err := remote.NewPuller(s.remoteOptions(ctx)...)
	if err != nil {
		return "", err
	}
	h, err := s.resolveTag(ctx, p, ref)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// resolveTag finds the digest a reference names: HEAD, as docker does (it
// does not count against pull limits), and GET where HEAD fails (some
// registries answer HEAD without the digest header).
func (s *Store) resolveTag(ctx context.Context, p *remote.Puller, ref name.Reference) (v1.Hash, error) {
	if d, ok := ref.(name.Digest); ok {
		h, err := v1.NewHash(d.DigestStr())
		if err == nil {
			err = checkHash(h)
		}
		return h, err
	}
	desc, err := p.Head(ctx, ref)
	if err == nil {
		return desc.Digest, checkHash(desc.Digest)
	}
	if errors.Is(err, ErrPlainHTTP) || ctx.Err() != nil {
		return v1.Hash{}, registryError(ref, err)
	}
	full, gerr := p.Get(ctx, ref)
	if gerr != nil {
		return v1.Hash{}, registryError(ref, gerr)
	}
	return full.Digest, checkHash(full.Digest)
}

// pullTarget is what a pull is asked for: the repository, the digest its
// reference names (RepoDigest) and, if a plan already chose it, the image
// manifest for this host.
type pullTarget struct {
	ref      name.Reference
	top      v1.Hash
	manifest v1.Hash
}

// target resolves the reference of an image spec: by its digest, by the
// pinned repo digest (the lock file's), or by asking the registry.
func (s *Store) target(ctx context.Context, p *remote.Puller, spec *resource.ImageSpec) (*pullTarget, error) {
	ref, err := s.reference(spec.Pull)
	if err != nil {
		return nil, err
	}
	t := &pullTarget{ref: ref}
	if spec.Digest != "" {
		if t.manifest, err = v1.NewHash(spec.Digest); err != nil {
			return nil, fmt.Errorf("digest: %w", err)
		}
	}
	if spec.RepoDigest != "" {
		if t.top, err = v1.NewHash(spec.RepoDigest); err == nil {
			err = checkHash(t.top)
		}
		if err != nil {
			return nil, fmt.Errorf("repo_digest: %w", err)
		}
		if d, ok := ref.(name.Digest); ok && d.DigestStr() != t.top.String() {
			return nil, fmt.Errorf("pull names %s but the image is pinned to %s", d.DigestStr(), t.top)
		}
		return t, nil
	}
	t.top, err = s.resolveTag(ctx, p, ref)
	return t, err
}

// manifests are the manifests of a pull, resolved to this host's image.
type manifests struct {
	top      v1.Hash // what the reference names: an index or the manifest
	digest   v1.Hash // the image manifest for this host
	manifest *v1.Manifest
}

// resolveManifests reads the manifest the target names from the store or
// the registry, and for an index the manifest of this host's platform.
// What comes from the registry is verified and staged.
func (s *Store) resolveManifests(ctx context.Context, p *remote.Puller, t *pullTarget, st *stage) (*manifests, error) {
	raw, err := s.manifestBlob(ctx, p, t.ref, t.top, st)
	if err != nil {
		return nil, err
	}
	out := &manifests{top: t.top, digest: t.top}
	switch mt := manifestType(raw); mt {
	case types.OCIImageIndex, types.DockerManifestList:
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", t.top, err)
		}
		if out.digest, err = pickPlatform(idx, t.top); err != nil {
			return nil, err
		}
		if raw, err = s.manifestBlob(ctx, p, t.ref, out.digest, st); err != nil {
			return nil, err
		}
		if mt := manifestType(raw); mt != types.OCIManifestSchema1 && mt != types.DockerManifestSchema2 {
			return nil, fmt.Errorf("index %s: the entry for %s is %q, not an image manifest", t.top, platformString(hostPlatform), mt)
		}
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return nil, fmt.Errorf("%s is a Docker schema 1 manifest, which registries stopped serving in 2019; push the image again with a current client", t.top)
	default:
		return nil, fmt.Errorf("%s has media type %q: not an image or an index", t.top, mt)
	}
	if t.manifest != (v1.Hash{}) && t.manifest != out.digest {
		return nil, fmt.Errorf("%s now resolves to manifest %s for this host, not the planned %s; run berth plan again", t.top, out.digest, t.manifest)
	}
	if out.manifest, err = v1.ParseManifest(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", out.digest, err)
	}
	if err := checkHash(out.manifest.Config.Digest); err != nil {
		return nil, fmt.Errorf("manifest %s: config: %w", out.digest, err)
	}
	for _, l := range out.manifest.Layers {
		if err := checkHash(l.Digest); err != nil {
			return nil, fmt.Errorf("manifest %s: layer: %w", out.digest, err)
		}
		if _, err := layerCompression(l.MediaType); err != nil {
			return nil, fmt.Errorf("manifest %s: layer %s: %w", out.digest, l.Digest, err)
		}
		if len(l.URLs) > 0 {
			return nil, fmt.Errorf("manifest %s: layer %s is a foreign layer (fetched from %s); berth pulls self-contained images only", out.digest, l.Digest, l.URLs[0])
		}
	}
	return out, nil
}

// manifestBlob reads a manifest from the store, or fetches it by digest
// (go-containerregistry checks it against the digest) and stages it.
func (s *Store) manifestBlob(ctx context.Context, p *remote.Puller, ref name.Reference, h v1.Hash, st *stage) ([]byte, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	if s.hasBlob(h) {
		if raw, err := s.readBlob(h); err == nil {
			return raw, nil
		}
	}
	if raw, ok := st.bytes(h); ok {
		return raw, nil
	}
	desc, err := p.Get(ctx, ref.Context().Digest(h.String()))
	if err != nil {
		return nil, registryError(ref, err)
	}
	if len(desc.Manifest) > maxMetadataBlob {
		return nil, fmt.Errorf("manifest %s: larger than %d bytes", h, maxMetadataBlob)
	}
	if err := st.put(bytes.NewReader(desc.Manifest), h, int64(len(desc.Manifest)), true, nil); err != nil {
		return nil, fmt.Errorf("manifest %s from %s: %w", h, ref.Context(), err)
	}
	return desc.Manifest, nil
}

// manifestType tells an index from an image manifest, also when the
// optional mediaType field is missing.
func manifestType(raw []byte) types.MediaType {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return types.OCIImageIndex
	case probe.Config != nil:
		return types.OCIManifestSchema1
	}
	return ""
}

// pickPlatform chooses this host's image in a multi-platform index.
func pickPlatform(idx *v1.IndexManifest, digest v1.Hash) (v1.Hash, error) {
	var seen []string
	for _, d := range idx.Manifests {
		if d.MediaType != types.OCIManifestSchema1 && d.MediaType != types.DockerManifestSchema2 || d.Platform == nil {
			continue
		}
		if d.Platform.Satisfies(hostPlatform) {
			if err := checkHash(d.Digest); err != nil {
				return v1.Hash{}, fmt.Errorf("index %s: %w", digest, err)
			}
			return d.Digest, nil
		}
		seen = append(seen, platformString(*d.Platform))
	}
	if len(seen) == 0 {
		return v1.Hash{}, fmt.Errorf("index %s lists no image for a platform", digest)
	}
	return v1.Hash{}, fmt.Errorf("index %s has no image for %s (it has %s)", digest, platformString(hostPlatform), strings.Join(seen, ", "))
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// resolvePull resolves a pulled image at plan time: its reference to the
// repo digest (unless pinned), that to this host's manifest, and the
// manifest to its config digest. Manifests are stored (small, verified,
// content-addressed); layers are not fetched.
func (s *Store) resolvePull(ctx context.Context, spec *resource.ImageSpec) (*manifests, error) {
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, err := remote.NewPuller(s.remoteOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	t, err := s.target(ctx, p, spec)
	if err != nil {
		return nil, err
	}
	st, err := s.newStage()
	if err != nil {
		return nil, err
	}
	defer st.abort()
	m, err := s.resolveManifests(ctx, p, t, st)
	if err != nil {
		return nil, err
	}
	return m, st.commit()
}

// Progress reports the state of one blob of a pull, or of a whole push.
type Progress struct {
	// Digest names the blob ("" for a push's whole image); Kind is
	// "manifest", "config", "layer" or "image".
	Digest string `json:"digest,omitempty"`
	Kind   string `json:"kind"`
	// State is one of the Blob* constants.
	State string `json:"state"`
	// Done of Size bytes are transferred.
	Size int64 `json:"size"`
	Done int64 `json:"done"`
}

// The states a Progress reports, in the order they come.
const (
	BlobWaiting     = "waiting"     // listed, not started
	BlobExists      = "exists"      // already stored (or already in the registry): not transferred
	BlobDownloading = "downloading" // bytes are coming in
	BlobDone        = "done"        // downloaded and verified
	BlobFailed      = "failed"
	BlobPushing     = "pushing"
	BlobPushed      = "pushed"
)

// PullOptions tune Pull.
type PullOptions struct {
	// Name records the image in the store under this name, as a tag
	// would; "" records it under the reference as given.
	Name string
	// Progress, if set, is called from the downloading goroutines, at most
	// every 100ms per blob while bytes arrive and at each change of state.
	Progress func(Progress)
}

// Pulled describes the image a Pull stored.
type Pulled struct {
	Name       string `json:"name"`
	RepoDigest string `json:"repo_digest"`
	Digest     string `json:"digest"`
	ID         string `json:"id"`
	// Downloaded is what came over the network; Reused counts the blobs
	// already stored.
	Downloaded int64 `json:"downloaded"`
	Blobs      int   `json:"blobs"`
	Reused     int   `json:"reused"`
}

// Pull fetches the image a registry reference names, for this host's
// platform, into the store and records it under opts.Name, with no owner.
// Its layers are unpacked when a container
// first needs them, as with an image made by Create. Blobs already stored are not
// fetched; the others are downloaded at once (PullParallelism), each
// verified against its digest and size. Nothing is renamed into the store
// before every blob of the image arrived whole: a pull that fails leaves
// the store as it was.
func (s *Store) Pull(ctx context.Context, raw string, opts PullOptions) (*Pulled, error) {
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	name := opts.Name
	if name == "" {
		// A digest reference is recorded under its repository.
		name, _, _ = strings.Cut(raw, "@")
	}
	// A digest reference is recorded under its bare repository, as
	// before: it names no tag.
	digestPull := opts.Name == "" && strings.Contains(raw, "@")
	if norm, err := NormalizeName(name); err != nil {
		return nil, err
	} else if !digestPull {
		name = norm
	}
	// A name a project recorded is refused before anything downloads, as
	// Tag refuses it.
	recs, err := s.readRecords()
	if err != nil {
		return nil, err
	}
	if err := ownedName(recs, name); err != nil {
		return nil, err
	}
	p, err := remote.NewPuller(s.remoteOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	t, err := s.target(ctx, p, &resource.ImageSpec{Pull: raw})
	if err != nil {
		return nil, err
	}
	img, stats, err := s.fetch(ctx, p, t, opts.Progress)
	if err != nil {
		return nil, err
	}
	rec := &record{Digest: img.Digest, ID: img.ID, MediaType: img.MediaType, Size: img.Size, RepoDigest: t.top}
	var taken error
	if err := s.updateRecords(func(recs *records) bool {
		if taken = ownedName(recs, name); taken != nil {
			return false
		}
		if old := recs.Images[name]; old != nil && *old == *rec {
			return false
		}
		recs.Images[name] = rec
		if !digestPull {
			dropAliases(recs, name)
		}
		return true
	}); err != nil {
		return nil, err
	}
	if taken != nil {
		return nil, taken
	}
	stats.Name, stats.RepoDigest, stats.Digest, stats.ID = name, t.top.String(), img.Digest.String(), img.ID.String()
	return stats, nil
}

// pullSpec stores the image of a spec with pull set: the planned repo
// digest and manifest when the plan resolved them. The caller holds
// lockContent shared.
func (s *Store) pullSpec(ctx context.Context, spec *resource.ImageSpec) (*storedImage, error) {
	p, err := remote.NewPuller(s.remoteOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	t, err := s.target(ctx, p, spec)
	if err != nil {
		return nil, err
	}
	img, _, err := s.fetch(ctx, p, t, nil)
	return img, err
}

// fetch stores every blob of the target's image that is not stored yet.
// The caller holds lockContent shared.
func (s *Store) fetch(ctx context.Context, p *remote.Puller, t *pullTarget, progress func(Progress)) (*storedImage, *Pulled, error) {
	st, err := s.newStage()
	if err != nil {
		return nil, nil, err
	}
	defer st.abort()
	m, err := s.resolveManifests(ctx, p, t, st)
	if err != nil {
		return nil, nil, err
	}
	type blob struct {
		desc v1.Descriptor
		kind string
	}
	blobs := []blob{{m.manifest.Config, "config"}}
	for _, l := range m.manifest.Layers {
		blobs = append(blobs, blob{l, "layer"})
	}
	stats := &Pulled{}
	seen := map[v1.Hash]bool{}
	var todo []blob
	for _, b := range blobs {
		if seen[b.desc.Digest] {
			continue
		}
		seen[b.desc.Digest] = true
		stats.Blobs++
		if s.hasBlob(b.desc.Digest) {
			stats.Reused++
			report(progress, Progress{Digest: b.desc.Digest.String(), Kind: b.kind, State: BlobExists, Size: b.desc.Size, Done: b.desc.Size})
			continue
		}
		todo = append(todo, b)
		report(progress, Progress{Digest: b.desc.Digest.String(), Kind: b.kind, State: BlobWaiting, Size: b.desc.Size})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.reg.jobs)
	var mu sync.Mutex
	for _, b := range todo {
		g.Go(func() error {
			pr := Progress{Digest: b.desc.Digest.String(), Kind: b.kind, State: BlobDownloading, Size: b.desc.Size}
			report(progress, pr)
			err := s.download(gctx, p, t.ref, b.desc, st, func(done int64) {
				pr.Done = done
				report(progress, pr)
			})
			if err != nil {
				pr.State = BlobFailed
				report(progress, pr)
				return fmt.Errorf("%s %s: %w", b.kind, b.desc.Digest, err)
			}
			pr.State, pr.Done = BlobDone, b.desc.Size
			report(progress, pr)
			mu.Lock()
			stats.Downloaded += b.desc.Size
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, fmt.Errorf("pulling %s: %w; nothing of it was stored", t.ref, err)
	}
	if err := st.commit(); err != nil {
		return nil, nil, err
	}
	img, err := s.loadImage(m.digest)
	if err != nil {
		return nil, nil, err
	}
	img.RepoDigest = m.top
	return img, stats, nil
}

func report(progress func(Progress), p Progress) {
	if progress != nil {
		progress(p)
	}
}

// download fetches one blob into the stage. go-containerregistry checks
// the digest as it reads; the stage checks digest and size again as it
// writes, so what the store holds never rests on one check.
func (s *Store) download(ctx context.Context, p *remote.Puller, ref name.Reference, desc v1.Descriptor, st *stage, progress func(int64)) error {
	l, err := p.Layer(ctx, ref.Context().Digest(desc.Digest.String()))
	if err != nil {
		return registryError(ref, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return registryError(ref, err)
	}
	defer rc.Close()
	return st.put(rc, desc.Digest, desc.Size, false, progress)
}

// Push uploads a stored image to a registry reference. src names the
// image: a recorded name, NAME@sha256:HEX or a bare digest. It returns the
// manifest digest the registry now holds. A pulled multi-platform image is
// pushed as this host's image only.
func (s *Store) Push(ctx context.Context, src, dst string, progress func(Progress)) (string, error) {
	ref, err := s.reference(dst)
	if err != nil {
		return "", err
	}
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return "", err
	}
	defer unlock()
	digest, err := s.find(src)
	if err != nil {
		return "", err
	}
	if _, err := s.loadImage(digest); err != nil {
		return "", fmt.Errorf("image %s: %w", src, err)
	}
	img, err := layout.Path(s.root).Image(digest)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", src, err)
	}
	opts := s.remoteOptions(ctx)
	var wg sync.WaitGroup
	if progress != nil {
		updates := make(chan v1.Update, 16)
		opts = append(opts, remote.WithProgress(updates))
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := time.Time{}
			for u := range updates {
				if now := time.Now(); now.Sub(last) >= 100*time.Millisecond || u.Complete == u.Total {
					last = now
					progress(Progress{Kind: "image", State: BlobPushing, Size: u.Total, Done: u.Complete})
				}
			}
		}()
	}
	err = remote.Write(ref, img, opts...)
	wg.Wait()
	if err != nil {
		return "", registryError(ref, err)
	}
	return digest.String(), nil
}

// find names a stored image by record name, NAME@DIGEST or digest.
func (s *Store) find(src string) (v1.Hash, error) {
	recs, err := s.readRecords()
	if err != nil {
		return v1.Hash{}, err
	}
	for _, n := range nameCandidates(src) {
		if r := recs.Images[n]; r != nil {
			return r.Digest, nil
		}
	}
	d := src
	if i := strings.LastIndexByte(src, '@'); i >= 0 {
		d = src[i+1:]
	}
	h, err := v1.NewHash(d)
	if err != nil || checkHash(h) != nil {
		return v1.Hash{}, fmt.Errorf("no image named %q in the store: %w", src, resource.ErrNotFound)
	}
	if _, err := s.lookup(h); err != nil {
		return v1.Hash{}, err
	}
	return h, nil
}

// copyCounting copies r to w, calling progress with the bytes so far at
// most every 100ms.
func copyCounting(w io.Writer, r io.Reader, progress func(int64)) (int64, error) {
	if progress == nil {
		return io.Copy(w, r)
	}
	buf := make([]byte, 256<<10)
	var n int64
	last := time.Now()
	for {
		m, err := r.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
			if now := time.Now(); now.Sub(last) >= 100*time.Millisecond {
				last = now
				progress(n)
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
