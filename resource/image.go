package resource

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/zclconf/go-cty/cty"
)

// ImageSchema declares the image kind. An image comes from exactly one
// source: a registry (pull), a local archive (docker save or OCI layout
// tar) or a root filesystem directory (like docker import, with its config
// given here). Its digests are computed by the driver at plan time, so a
// plan can say "image digest changed" before anything runs; a pulled
// image's tag is resolved through the lock file (berth.lock.hcl), which
// the DSL reads into repo_digest.
var ImageSchema = &Schema{
	Attributes: map[string]*Attribute{
		"name":        {Type: cty.String, Optional: true, Doc: "repository name recorded in the store; defaults to PROJECT/LABEL"},
		"pull":        {Type: cty.String, Optional: true, Validate: validatePullRef, Doc: "registry reference, REGISTRY/REPOSITORY:TAG or …@sha256:HEX"},
		"archive":     {Type: cty.String, Optional: true, Path: true, Doc: "docker save or OCI layout tar"},
		"rootfs":      {Type: cty.String, Optional: true, Path: true, Doc: "directory that becomes the image's only layer"},
		"command":     {Type: strList, Optional: true, Doc: "CMD (rootfs images)"},
		"entrypoint":  {Type: strList, Optional: true, Doc: "ENTRYPOINT (rootfs images)"},
		"env":         {Type: strMap, Optional: true, Doc: "ENV (rootfs images)"},
		"working_dir": {Type: cty.String, Optional: true, Validate: validateAbsPath, Doc: "WORKDIR (rootfs images)"},
		"user":        {Type: cty.String, Optional: true, Doc: "USER (rootfs images)"},
		"labels":      {Type: strMap, Optional: true, Doc: "LABEL (rootfs images)"},

		"id":     {Type: cty.String, Computed: true, Reason: "image digest changed", Doc: "config digest, sha256:..."},
		"digest": {Type: cty.String, Computed: true, Reason: "image digest changed", Doc: "manifest digest, sha256:..."},
		"ref":    {Type: cty.String, Computed: true, Reason: "image digest changed", Doc: "NAME@DIGEST, what a container's image refers to"},
		// A changed repo_digest with the same digest (an index that gained
		// another platform) changes no byte this host runs: in place.
		"repo_digest": {Type: cty.String, Computed: true, Update: InPlace, Doc: "pulled images: the digest pull resolves to in its registry (a multi-platform index, or the manifest), as berth.lock.hcl pins it"},
		// Known at plan time even when the digest is not: the build cache's
		// key of the last step the cache answers (every step's, once
		// built), so a changed context, Dockerfile or argument shows as a
		// change before anything runs.
		"build_key": {Type: cty.String, Computed: true, Reason: "build inputs changed", Doc: "built images: the build cache key of the image's last step"},
	},
	Blocks: map[string]*Block{
		"build": {Nesting: NestingSingle, Doc: "build the image from a Dockerfile", Schema: &Schema{Attributes: map[string]*Attribute{
			"context":    {Type: cty.String, Required: true, Path: true, Doc: "the build context directory"},
			"dockerfile": {Type: cty.String, Optional: true, Doc: "the Dockerfile, relative to the context; default Dockerfile"},
			"args":       {Type: strMap, Optional: true, Doc: "build arguments (ARG)"},
			"target":     {Type: cty.String, Optional: true, Doc: "the stage to build; default the last"},
			"network":    {Type: cty.String, Optional: true, Validate: validateBuildNetwork, Doc: `network of RUN steps: "none" (default) or "host"`},
		}}},
	},
	Check: checkImage,
}

// validateBuildNetwork checks the network a build's RUN steps get.
func validateBuildNetwork(v cty.Value) error {
	switch v.AsString() {
	case "none", "host":
		return nil
	}
	return fmt.Errorf(`%q is not a build network: use "none" (the default: RUN steps reach nothing) or "host"`, v.AsString())
}

// imageSources are the attributes an image may take its content from,
// exactly one at a time.
var imageSources = []string{"pull", "archive", "rootfs", "build"}

func checkImage(v cty.Value) []AttrError {
	var set []string
	for _, s := range imageSources {
		if !v.GetAttr(s).IsNull() {
			set = append(set, s)
		}
	}
	switch {
	case len(set) == 0:
		return []AttrError{{Path: cty.GetAttrPath("pull"), Msg: "an image needs a source: set pull (a registry reference), archive (a docker save or OCI layout tar) or rootfs (a directory), or add a build block (a Dockerfile)"}}
	case len(set) == 2:
		return []AttrError{{Path: cty.GetAttrPath(set[1]), Msg: fmt.Sprintf("an image has one source: set %s or %s, not both", set[0], set[1])}}
	case len(set) > 2:
		return []AttrError{{Path: cty.GetAttrPath(set[1]), Msg: "an image has one source: set one of pull, archive, rootfs and build"}}
	case set[0] != "rootfs":
		for _, name := range []string{"command", "entrypoint", "env", "working_dir", "user", "labels"} {
			if !v.GetAttr(name).IsNull() {
				return []AttrError{{Path: cty.GetAttrPath(name), Msg: name + " applies to rootfs images only; a pulled, archived or built image carries its own config (a built one from its Dockerfile)"}}
			}
		}
	}
	return nil
}

// validatePullRef checks a registry reference as the registry client will
// read it.
func validatePullRef(v cty.Value) error {
	_, err := ParsePullRef(v.AsString())
	return err
}

// ParsePullRef reads a registry reference: REGISTRY/REPOSITORY:TAG,
// …@sha256:HEX, or a short Docker Hub name such as "busybox".
func ParsePullRef(s string) (name.Reference, error) {
	if strings.Contains(s, "://") {
		return nil, fmt.Errorf("%q is a URL; write a registry reference such as registry.example.com/team/app:1.2 (plain HTTP is chosen per registry, see BERTH_INSECURE_REGISTRIES)", s)
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		hint := err.Error()
		if repo, _, _ := strings.Cut(s, "@"); repo != strings.ToLower(repo) {
			if _, lerr := name.ParseReference(strings.ToLower(repo)); lerr == nil {
				hint = "repository names are lowercase"
			}
		}
		return nil, fmt.Errorf("%q is not a registry reference (REGISTRY/REPOSITORY:TAG or REPOSITORY@sha256:HEX): %s", s, hint)
	}
	return ref, nil
}

// ImageSpec is the image kind decoded for drivers.
type ImageSpec struct {
	Name       string            `cty:"name"`
	Pull       string            `cty:"pull"`
	Archive    string            `cty:"archive"`
	Rootfs     string            `cty:"rootfs"`
	Command    []string          `cty:"command"`
	Entrypoint []string          `cty:"entrypoint"`
	Env        map[string]string `cty:"env"`
	WorkingDir string            `cty:"working_dir"`
	User       string            `cty:"user"`
	Labels     map[string]string `cty:"labels"`

	ID         string `cty:"id"`
	Digest     string `cty:"digest"`
	Ref        string `cty:"ref"`
	RepoDigest string `cty:"repo_digest"`
	BuildKey   string `cty:"build_key"`

	Build ImageBuildSpec `cty:"build"`
}

// ImageBuildSpec is an image's build block: a Dockerfile build.
type ImageBuildSpec struct {
	Context    string            `cty:"context"`
	Dockerfile string            `cty:"dockerfile"`
	Args       map[string]string `cty:"args"`
	Target     string            `cty:"target"`
	Network    string            `cty:"network"`
}

// Enabled tells whether the image has a build block.
func (b ImageBuildSpec) Enabled() bool { return b.Context != "" }
