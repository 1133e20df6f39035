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
	if errors.Is(err, ErrNotCached) {
		return resource.WithAttrs(desired, map[string]cty.Value{
			"id":          cty.UnknownVal(cty.String),
			"digest":      cty.UnknownVal(cty.String),
			"ref":         cty.UnknownVal(cty.String),
			"repo_digest": cty.NullVal(cty.String),
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
	digest, err := s.builder.Build(ctx, &spec.Build, cacheOnly)
	if err != nil {
		return nil, err
	}
	return s.loadImage(digest)
}
