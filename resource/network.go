package resource

import "github.com/zclconf/go-cty/cty"

// NetworkSchema declares the network kind.
var NetworkSchema = &Schema{
	Attributes: map[string]*Attribute{
		"name":     {Type: cty.String, Optional: true, Validate: validateName, Doc: "host-wide network name; defaults to PROJECT-LABEL"},
		"driver":   {Type: cty.String, Optional: true, Default: cty.StringVal("bridge"), Validate: oneOf("bridge", "host", "none")},
		"subnet":   {Type: cty.String, Optional: true, Computed: true, Validate: validateCIDR, Doc: "IPv4 CIDR; by default a free /24 from 10.213.0.0/16"},
		"gateway":  {Type: cty.String, Optional: true, Computed: true, Validate: validateIPv4, Doc: "defaults to the subnet's first address"},
		"internal": {Type: cty.Bool, Optional: true, Default: cty.False, Doc: "no outbound traffic (no NAT, no default route)"},
		"labels":   {Type: strMap, Optional: true, Update: InPlace},

		"bridge": {Type: cty.String, Computed: true, Doc: "the Linux bridge's name"},
	},
}

// NetworkSpec is the network kind decoded for drivers.
type NetworkSpec struct {
	Name     string            `cty:"name"`
	Driver   string            `cty:"driver"`
	Subnet   string            `cty:"subnet"`
	Gateway  string            `cty:"gateway"`
	Internal bool              `cty:"internal"`
	Labels   map[string]string `cty:"labels"`
	Bridge   string            `cty:"bridge"`
}
