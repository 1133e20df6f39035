package image

import (
	"context"
	"errors"
	"fmt"

	"github.com/zclconf/go-cty/cty"

	"github.com/seed-e88ffcd2/berth/resource"
)

// previewBuild answers a plan for an image with a build block from the
// build cache alone: a build whose every step is cached has a known digest
// (an unchanged context plans "no changes"); one that would run a step is
// built by apply, and its digests are known after apply. Planning never
// runs a Dockerfile's commands.
func (s *Store) previewBuild(ctx context.Context, addr resource.Addr, desired cty.Value) (cty.Value, error) {
	spec, err := decodeSpec(addr, desired)
	if err != nil {
		return cty.NilVal, err
	}
	img, err := s.buildSpec(ctx, spec, true)
	var miss *notCached
	if errors.As(err, &miss) {
		// The digest is known after apply; the key says now that the
		// inputs changed.
		key := cty.UnknownVal(cty.String)
		if miss.key != "" {
			key = cty.StringVal(miss.key)
		}
		return resource.WithAttrs(desired, map[string]cty.Value{
			"id":          cty.UnknownVal(cty.String),
			"digest":      cty.UnknownVal(cty.String),
			"ref":         cty.UnknownVal(cty.String),
			"repo_digest": cty.NullVal(cty.String),
			"build_key":   key,
		}), nil
	}
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", addr, err)
	}
	return filled(desired, spec.Name, img), nil
}

// buildSpec builds the image of a spec with a build block through the
// builder the agent wired in.
func (s *Store) buildSpec(ctx context.Context, spec *resource.ImageSpec, cacheOnly bool) (*storedImage, error) {
	if s.builder == nil {
		return nil, errors.New("this image store cannot build images (no builder wired in)")
	}
	digest, key, err := s.builder.Build(ctx, &spec.Build, cacheOnly)
	if errors.Is(err, ErrNotCached) {
		return nil, &notCached{key: key, err: err}
	}
	if err != nil {
		return nil, err
	}
	img, err := s.loadImage(digest)
	if err != nil {
		return nil, err
	}
	img.BuildKey = key
	return img, nil
}

// notCached is a cache-only build's miss, with the key of the first step
// the cache lacks.
type notCached struct {
	key string
	err error
}

func (e *notCached) Error() string { return e.err.Error() }
func (e *notCached) Unwrap() error { return e.err }
