package resource

import "github.com/zclconf/go-cty/cty"

// ImageSchema declares the image kind. An image comes from exactly one
// source: a local archive (docker save or OCI layout tar) or a root
// filesystem directory (like docker import, with its config given here).
// Its digests are computed by the driver at plan time, so a plan can say
// "image digest changed" before anything runs.
var ImageSchema = &Schema{
	Attributes: map[string]*Attribute{
		"name":        {Type: cty.String, Optional: true, Doc: "repository name recorded in the store; defaults to PROJECT/LABEL"},
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
	},
	Check: checkImage,
}

func checkImage(v cty.Value) []AttrError {
	archive, rootfs := v.GetAttr("archive"), v.GetAttr("rootfs")
	switch {
	case archive.IsNull() && rootfs.IsNull():
		return []AttrError{{Path: cty.GetAttrPath("archive"), Msg: "an image needs a source: set archive (a docker save or OCI layout tar) or rootfs (a directory)"}}
	case !archive.IsNull() && !rootfs.IsNull():
		return []AttrError{{Path: cty.GetAttrPath("rootfs"), Msg: "an image has one source: set archive or rootfs, not both"}}
	case !archive.IsNull():
		for _, name := range []string{"command", "entrypoint", "env", "working_dir", "user", "labels"} {
			if !v.GetAttr(name).IsNull() {
				return []AttrError{{Path: cty.GetAttrPath(name), Msg: name + " applies to rootfs images only; an archive carries its own config"}}
			}
		}
	}
	return nil
}

// ImageSpec is the image kind decoded for drivers.
type ImageSpec struct {
	Name       string            `cty:"name"`
	Archive    string            `cty:"archive"`
	Rootfs     string            `cty:"rootfs"`
	Command    []string          `cty:"command"`
	Entrypoint []string          `cty:"entrypoint"`
	Env        map[string]string `cty:"env"`
	WorkingDir string            `cty:"working_dir"`
	User       string            `cty:"user"`
	Labels     map[string]string `cty:"labels"`

	ID     string `cty:"id"`
	Digest string `cty:"digest"`
	Ref    string `cty:"ref"`
}
