package image

import (
	"context"
	"fmt"
	"os"
	"strings"
	"unicode"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/resource"
)

// sourceAttrs decide an image's content and name; when all are known, its
// digests can be computed at plan time.
var sourceAttrs = []string{"name", "pull", "archive", "rootfs", "command", "entrypoint", "env", "working_dir", "user", "labels", "build"}

// Preview refuses a name another owner recorded, then imports the image's
// source into the store's blobs and fills in id, digest and ref, so a plan
// shows "image digest changed" before anything runs. Importing is
// harmless: blobs are content-addressed, and nothing is recorded, so
// unreferenced ones are collected later. With a source not yet known, the
// computed attributes are unknown.
func (s *Store) Preview(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error) {
	if desired.IsNull() || !desired.IsKnown() {
		return desired, nil
	}
	if name := desired.GetAttr("name"); name.IsKnown() {
		n := defaultName(addr)
		if !name.IsNull() {
			n = name.AsString()
		}
		legacy := !prior.IsNull() && prior.GetAttr("name").RawEquals(name)
		if err := s.checkOwner(ctx, n, legacy); err != nil {
			return cty.NilVal, err
		}
	}
	for _, a := range sourceAttrs {
		if !desired.GetAttr(a).IsWhollyKnown() {
			unknown := map[string]cty.Value{
				"id":     cty.UnknownVal(cty.String),
				"digest": cty.UnknownVal(cty.String),
				"ref":    cty.UnknownVal(cty.String),
			}
			if !desired.GetAttr("pull").IsKnown() {
				unknown["repo_digest"] = cty.UnknownVal(cty.String)
			}
			if !desired.GetAttr("build").IsWhollyKnown() {
				unknown["build_key"] = cty.UnknownVal(cty.String)
			}
			return resource.WithAttrs(desired, unknown), nil
		}
	}
	if !desired.GetAttr("pull").IsNull() {
		return s.previewPull(ctx, addr, desired)
	}
	if b := desired.GetAttr("build"); b.IsKnown() && !b.IsNull() {
		return s.previewBuild(ctx, addr, desired)
	}
	return s.imported(ctx, addr, desired, func(spec *resource.ImageSpec, img *storedImage) (cty.Value, error) {
		return filled(desired, spec.Name, img), nil
	})
}

// previewPull resolves a pulled image's reference, unless the lock file
// pinned it (repo_digest), and the manifest for this host: the plan shows
// the digest a container will run, and "image digest changed" when the
// pin moves.
func (s *Store) previewPull(ctx context.Context, addr resource.Addr, desired cty.Value) (cty.Value, error) {
	if err := ctx.Err(); err != nil {
		return cty.NilVal, err
	}
	spec, err := decodeSpec(addr, desired)
	if err != nil {
		return cty.NilVal, err
	}
	spec.Digest = "" // what the registry serves now for the pin decides
	m, err := s.resolvePull(ctx, spec)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	return filled(desired, spec.Name, &storedImage{Digest: m.digest, ID: m.manifest.Config.Digest, RepoDigest: m.top}), nil
}

// imported decodes the desired image and imports it into the blob store
// under the shared content lock (so no GC runs meanwhile), then hands it to
// then, still under the lock.
func (s *Store) imported(ctx context.Context, addr resource.Addr, desired cty.Value, then func(*resource.ImageSpec, *storedImage) (cty.Value, error)) (cty.Value, error) {
	if err := ctx.Err(); err != nil {
		return cty.NilVal, err
	}
	spec, err := decodeSpec(addr, desired)
	if err != nil {
		return cty.NilVal, err
	}
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return cty.NilVal, err
	}
	defer unlock()
	img, err := s.importSpec(ctx, spec)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	return then(spec, img)
}

// checkOwner refuses a name whose record another owner made; legacy is
// as resource.ForeignOwner takes it.
func (s *Store) checkOwner(ctx context.Context, name string, legacy bool) error {
	recs, err := s.readRecords()
	if err != nil {
		return err
	}
	if old := recs.Images[name]; old != nil {
		if other := resource.ForeignOwner(ctx, old.Owner, legacy); other != "" {
			return alreadyExists(name, other)
		}
	}
	return nil
}

func alreadyExists(name, owner string) error {
	return resource.Errorf(resource.ErrAlreadyExists, "image name %q already exists on this host and belongs to %s; choose another name, or destroy it there", name, owner)
}

// Prepare imports the image and unpacks its layers — pulls or builds it —
// without naming it: an apply does it before its deletes, so that a build
// that fails or a registry that is down stops the apply before the image
// and containers it replaces are gone. Create then finds it all stored (a
// pulled image whose old name's delete collected the blobs meanwhile is
// fetched again).
func (s *Store) Prepare(ctx context.Context, addr resource.Addr, desired cty.Value) error {
	_, err := s.imported(ctx, addr, desired, func(_ *resource.ImageSpec, img *storedImage) (cty.Value, error) {
		_, err := s.ensureLayers(img)
		return cty.NilVal, err
	})
	return err
}

// Create imports the image, unpacks its layers that are not unpacked yet
// and records its name, which must not be another owner's.
func (s *Store) Create(ctx context.Context, addr resource.Addr, desired cty.Value) (cty.Value, error) {
	return s.imported(ctx, addr, desired, func(spec *resource.ImageSpec, img *storedImage) (cty.Value, error) {
		if _, err := s.ensureLayers(img); err != nil {
			return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
		}
		// The caller's name moves to the new digest, as a docker tag does; the
		// image it named before stays until garbage collection finds it
		// unreferenced. Another owner's name stays: moving it would let GC
		// take layers their containers run on.
		rec := &record{Digest: img.Digest, ID: img.ID, MediaType: img.MediaType, Size: img.Size, Owner: resource.RecordedOwner(ctx), RepoDigest: img.RepoDigest}
		var taken error
		err := s.updateRecords(func(recs *records) bool {
			old := recs.Images[spec.Name]
			if old != nil {
				if other := resource.ForeignOwner(ctx, old.Owner, true); other != "" {
					taken = alreadyExists(spec.Name, other)
					return false
				}
				if *old == *rec {
					return false
				}
			}
			recs.Images[spec.Name] = rec
			return true
		})
		if err == nil {
			err = taken
		}
		if err != nil {
			return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
		}
		return filled(desired, spec.Name, img), nil
	})
}

// Update changes only a pulled image's repo_digest in place: the pin
// moved (an index that gained a platform) to content that holds the same
// manifest for this host. Every other attribute decides the image's
// content or its name, and those replace it. It carries the other
// computed attributes over.
func (s *Store) Update(ctx context.Context, addr resource.Addr, prior, desired cty.Value) (cty.Value, error) {
	v := resource.WithAttrs(desired, map[string]cty.Value{
		"id":     prior.GetAttr("id"),
		"digest": prior.GetAttr("digest"),
		"ref":    prior.GetAttr("ref"),
	})
	if v.GetAttr("pull").IsNull() || v.GetAttr("repo_digest").RawEquals(prior.GetAttr("repo_digest")) {
		return v, nil
	}
	// Fetching again by the new pin checks it names the same manifest and
	// stores the index, which the record then keeps.
	return s.Create(ctx, addr, v)
}

// Delete removes the image's record, if the name still points at this
// image and is not another owner's, then collects the blobs and layers no
// record needs any more; layers shared with other images stay. The delete
// is done once the record is gone: a collection that fails (a damaged
// record of another image) is retried by the next delete.
func (s *Store) Delete(ctx context.Context, addr resource.Addr, prior cty.Value) error {
	spec, err := decodeSpec(addr, prior)
	if err != nil {
		return err
	}
	digest, err := v1.NewHash(spec.Digest)
	if err != nil {
		return fmt.Errorf("%s: recorded digest: %w", addr, err)
	}
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return err
	}
	err = s.updateRecords(func(recs *records) bool {
		if old := recs.Images[spec.Name]; old != nil && old.Digest == digest && resource.ForeignOwner(ctx, old.Owner, true) == "" {
			delete(recs.Images, spec.Name)
			return true
		}
		return false
	})
	unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	_ = s.GC(ctx)
	return nil
}

// Observe finds the image Missing when its record, its blobs or one of its
// unpacked layers is gone, so the next apply imports it again.
func (s *Store) Observe(ctx context.Context, addr resource.Addr, prior cty.Value) (resource.Observation, error) {
	spec, err := decodeSpec(addr, prior)
	if err != nil {
		return resource.Observation{}, err
	}
	digest, err := v1.NewHash(spec.Digest)
	if err != nil {
		return resource.Observation{}, fmt.Errorf("%s: recorded digest: %w", addr, err)
	}
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return resource.Observation{}, err
	}
	defer unlock()
	recs, err := s.readRecords()
	if err != nil {
		return resource.Observation{}, err
	}
	missing := func(format string, args ...any) (resource.Observation, error) {
		return resource.Observation{Health: resource.Missing, Reason: fmt.Sprintf(format, args...)}, nil
	}
	rec := recs.Images[spec.Name]
	switch {
	case rec == nil:
		return missing("image %s is not in the store", spec.Name)
	case resource.ForeignOwner(ctx, rec.Owner, true) != "":
		return missing("image %s now belongs to %s", spec.Name, rec.Owner)
	case rec.Digest != digest:
		return missing("image %s is now %s, not %s", spec.Name, rec.Digest, digest)
	}
	img, err := s.loadImage(digest)
	if err != nil {
		return missing("image %s is damaged: %v", spec.Name, err)
	}
	for _, d := range img.Config.RootFS.DiffIDs {
		if _, err := os.Stat(s.layerPath(d)); err != nil {
			return missing("layer %s of image %s is not unpacked", d, spec.Name)
		}
	}
	return resource.Observation{Health: resource.Healthy}, nil
}

// Resolve finds a recorded image by its ref, NAME@sha256:HEX, or by a bare
// digest. As with docker's NAME@DIGEST, the digest decides: the name only
// says where it came from. Layers missing on disk are unpacked again.
func (s *Store) Resolve(ctx context.Context, ref string) (*driver.ImageInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dgst := ref
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		dgst = ref[i+1:]
	}
	digest, err := v1.NewHash(dgst)
	if err == nil {
		err = checkHash(digest)
	}
	if err != nil {
		return nil, fmt.Errorf("image ref %q: want NAME@sha256:HEX or sha256:HEX: %w", ref, err)
	}
	unlock, err := s.lock(lockContent, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := s.lookup(digest); err != nil {
		return nil, fmt.Errorf("image ref %q: %w", ref, err)
	}
	img, err := s.loadImage(digest)
	if err != nil {
		return nil, fmt.Errorf("image ref %q: %w", ref, err)
	}
	layers, err := s.ensureLayers(img)
	if err != nil {
		return nil, fmt.Errorf("image ref %q: %w", ref, err)
	}
	c := img.Config.Config
	return &driver.ImageInfo{
		Ref:    ref,
		ID:     img.ID.String(),
		Layers: layers,
		Config: driver.ImageConfig{
			Entrypoint:  c.Entrypoint,
			Cmd:         c.Cmd,
			Env:         c.Env,
			WorkingDir:  c.WorkingDir,
			User:        c.User,
			Labels:      c.Labels,
			Healthcheck: healthcheck(c.Healthcheck),
		},
	}, nil
}

// importSpec stores the image of a spec's source. The caller holds
// lockContent shared.
func (s *Store) importSpec(ctx context.Context, spec *resource.ImageSpec) (*storedImage, error) {
	if spec.Pull != "" {
		return s.pullSpec(ctx, spec)
	}
	if spec.Archive != "" {
		return s.importArchive(spec.Archive, spec.Name)
	}
	if spec.Build.Enabled() {
		return s.buildSpec(ctx, spec, false)
	}
	return s.importRootfs(spec)
}

// decodeSpec decodes an image value whose computed attributes may still be
// unknown, and gives it its name.
func decodeSpec(addr resource.Addr, v cty.Value) (*resource.ImageSpec, error) {
	if v.IsNull() {
		return nil, fmt.Errorf("%s: no value", addr)
	}
	for _, a := range []string{"id", "digest", "ref", "repo_digest", "build_key"} {
		if !v.GetAttr(a).IsKnown() {
			v = resource.WithAttrs(v, map[string]cty.Value{a: cty.NullVal(cty.String)})
		}
	}
	var spec resource.ImageSpec
	if err := resource.Decode(v, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if spec.Name == "" {
		spec.Name = defaultName(addr)
	}
	if err := checkName(spec.Name); err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	n := 0
	for _, src := range []string{spec.Pull, spec.Archive, spec.Rootfs, spec.Build.Context} {
		if src != "" {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("%s: an image needs exactly one of pull, archive, rootfs and build", addr)
	}
	return &spec, nil
}

// defaultName names an image whose configuration gave none; the DSL
// normally fills in PROJECT/LABEL, so this serves values built elsewhere.
func defaultName(addr resource.Addr) string {
	if addr.Key == resource.NoKey {
		return addr.Name
	}
	return addr.Name + "-" + strings.Trim(string(addr.Key), `"`)
}

// checkName refuses names that would make an ambiguous ref.
func checkName(name string) error {
	if strings.ContainsRune(name, '@') || strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("image name %q may not contain '@', spaces or control characters", name)
	}
	return nil
}

// filled is desired with the computed attributes of an image.
func filled(desired cty.Value, name string, img *storedImage) cty.Value {
	repo := cty.NullVal(cty.String)
	if img.RepoDigest != (v1.Hash{}) {
		repo = cty.StringVal(img.RepoDigest.String())
	}
	key := cty.NullVal(cty.String)
	if img.BuildKey != "" {
		key = cty.StringVal(img.BuildKey)
	}
	return resource.WithAttrs(desired, map[string]cty.Value{
		"id":          cty.StringVal(img.ID.String()),
		"digest":      cty.StringVal(img.Digest.String()),
		"ref":         cty.StringVal(name + "@" + img.Digest.String()),
		"repo_digest": repo,
		"build_key":   key,
	})
}
