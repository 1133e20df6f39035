package resource

import "github.com/zclconf/go-cty/cty"

// VolumeSchema declares the volume kind: a directory under the state
// directory, filled from the image on first mount.
var VolumeSchema = &Schema{
	Attributes: map[string]*Attribute{
		"name":   {Type: cty.String, Optional: true, Validate: validateName, Doc: "host-wide volume name; defaults to PROJECT-LABEL"},
		"labels": {Type: strMap, Optional: true, Update: InPlace},

		"path": {Type: cty.String, Computed: true, Doc: "the volume's directory on the host"},
	},
}

// VolumeSpec is the volume kind decoded for drivers.
type VolumeSpec struct {
	Name   string            `cty:"name"`
	Labels map[string]string `cty:"labels"`
	Path   string            `cty:"path"`
}
