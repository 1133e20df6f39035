package resource

import (
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
)

func TestAddrRoundTrip(t *testing.T) {
	for _, a := range []Addr{
		{Kind: KindContainer, Name: "web"},
		{Kind: KindContainer, Name: "web", Key: IntKey(2)},
		{Kind: KindNetwork, Name: "lan", Key: StringKey("eu-west")},
		{Kind: KindVolume, Name: "data", Key: StringKey(`we"ird`)},
	} {
		got, err := ParseAddr(a.String())
		if err != nil || got != a {
			t.Errorf("ParseAddr(%q) = %v, %v; want %v", a.String(), got, err, a)
		}
	}
}

func TestParseAddrErrors(t *testing.T) {
	for in, want := range map[string]string{
		"web":              "want KIND.NAME",
		"pod.web":          `unknown kind "pod"`,
		"container.web[x]": "key must be a number or a quoted string",
		"container.web[1":  "missing closing bracket",
	} {
		if _, err := ParseAddr(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseAddr(%q) error = %v, want it to say %q", in, err, want)
		}
	}
}

func TestAddrLessOrdersKeysNumerically(t *testing.T) {
	a := Addr{Kind: KindContainer, Name: "w", Key: IntKey(2)}
	b := Addr{Kind: KindContainer, Name: "w", Key: IntKey(10)}
	if !a.Less(b) || b.Less(a) {
		t.Error("container.w[2] must sort before container.w[10]")
	}
}

// TestValidators runs every validator on values a user might write; each
// rejection must say what is wrong.
type bad struct {
	v    cty.Value
	want string
}

func TestValidators(t *testing.T) {
	num := func(f float64) cty.Value { return cty.NumberFloatVal(f) }
	str := cty.StringVal
	tests := []struct {
		name  string
		check func(cty.Value) error
		ok    []cty.Value
		bad   []bad
	}{
		{"port", validatePort, []cty.Value{num(1), num(8080), num(65535)},
			[]bad{{num(0), "not a port"}, {num(65536), "not a port"}, {num(80.5), "not a port"}}},
		{"memory", validateMemory, []cty.Value{str("64M"), str("1g"), str("1.5G"), str("134217728")},
			[]bad{{str("lots"), "not a memory size"}, {str("1k"), "6M minimum"}, {str("-5M"), "not a memory size"}}},
		{"duration", validateDuration, []cty.Value{str("10s"), str("1m30s"), str("0s")},
			[]bad{{str("10"), "not a duration"}, {str("-1s"), "not a duration"}}},
		{"positive duration", validatePositiveDuration, []cty.Value{str("1s"), str("250ms")},
			[]bad{{str("0s"), "greater than zero"}, {str("soon"), "greater than zero"}}},
		{"count", validateCount, []cty.Value{num(1), num(10)},
			[]bad{{num(0), "at least 1"}, {num(1.5), "whole number"}}},
		{"cidr", validateCIDR, []cty.Value{str("10.89.0.0/24"), str("192.168.4.0/30")},
			[]bad{{str("10.89.0.1/24"), "host bits set"}, {str("10.0.0.0/31"), "too small"}, {str("fd00::/64"), "not an IPv4 subnet"}, {str("nope"), "not an IPv4 subnet"}}},
		{"ipv4", validateIPv4, []cty.Value{str("127.0.0.1")},
			[]bad{{str("::1"), "not an IPv4"}, {str("300.1.1.1"), "not an IPv4"}}},
		{"signal", validateSignal, []cty.Value{str("SIGTERM"), str("sigquit")},
			[]bad{{str("TERM"), "not a stop signal"}}},
		{"restart", validateRestart, []cty.Value{str("no"), str("always"), str("unless-stopped"), str("on-failure"), str("on-failure:3")},
			[]bad{{str("sometimes"), "not a restart policy"}, {str("on-failure:0"), "not a restart policy"}, {str("on-failure:x"), "not a restart policy"}}},
		{"capabilities", validateCapabilities, []cty.Value{cty.ListVal([]cty.Value{str("NET_ADMIN"), str("cap_sys_time"), str("ALL")})},
			[]bad{{cty.ListVal([]cty.Value{str("FLY")}), "not a Linux capability"}}},
		{"name", validateName, []cty.Value{str("web"), str("hello-web_1.2")},
			[]bad{{str("-web"), "must start with a letter or digit"}, {str("a b"), "may hold only"}, {str(strings.Repeat("a", 64)), "1 to 63"}}},
		{"abs path", validateAbsPath, []cty.Value{str("/data")},
			[]bad{{str("data"), "absolute path"}}},
	}
	for _, tt := range tests {
		for _, v := range tt.ok {
			if err := tt.check(v); err != nil {
				t.Errorf("%s: %#v rejected: %v", tt.name, v, err)
			}
		}
		for _, b := range tt.bad {
			if err := tt.check(b.v); err == nil || !strings.Contains(err.Error(), b.want) {
				t.Errorf("%s: %#v: error %v, want it to say %q", tt.name, b.v, err, b.want)
			}
		}
	}
}

// TestSpecsMatchSchemas decodes a value of every kind's implied type into
// its Go spec: a field missing from a spec, or a tag that names no
// attribute, fails here rather than in a driver.
func TestSpecsMatchSchemas(t *testing.T) {
	specs := map[Kind]any{
		KindContainer: &ContainerSpec{},
		KindImage:     &ImageSpec{},
		KindNetwork:   &NetworkSpec{},
		KindVolume:    &VolumeSpec{},
	}
	for kind, spec := range specs {
		if err := Decode(zeroOf(SchemaOf(kind).ImpliedType()), spec); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
}

func TestDecodeTurnsNullsIntoZeroValues(t *testing.T) {
	v := zeroOf(ContainerSchema.ImpliedType())
	v = WithAttrs(v, map[string]cty.Value{
		"name":      cty.StringVal("web"),
		"command":   cty.NullVal(cty.List(cty.String)),
		"resources": cty.NullVal(ContainerSchema.Blocks["resources"].Schema.ImpliedType()),
		"port": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
			"target": cty.NumberIntVal(80), "published": cty.NumberIntVal(8080),
			"host_ip": cty.NullVal(cty.String), "protocol": cty.StringVal("tcp"),
		})}),
	})
	var spec ContainerSpec
	if err := Decode(v, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Name != "web" || len(spec.Command) != 0 || spec.Resources.Memory != "" || spec.Ports[0].Published != 8080 {
		t.Errorf("decoded %+v", spec)
	}
	if err := Decode(cty.UnknownVal(ContainerSchema.ImpliedType()), &spec); err == nil {
		t.Error("decoding an unknown value succeeded")
	}
}

func TestChecks(t *testing.T) {
	nulls := map[string]cty.Value{}
	for name, a := range ImageSchema.ImpliedType().AttributeTypes() {
		nulls[name] = cty.NullVal(a)
	}
	none := cty.ObjectVal(nulls)
	tests := []struct {
		set  map[string]cty.Value
		want string
	}{
		{map[string]cty.Value{}, "an image needs a source"},
		{map[string]cty.Value{"archive": cty.StringVal("a.tar"), "rootfs": cty.StringVal("dir")}, "not both"},
		{map[string]cty.Value{"archive": cty.StringVal("a.tar"), "user": cty.StringVal("nobody")}, "applies to rootfs images only"},
		{map[string]cty.Value{"rootfs": cty.StringVal("dir"), "user": cty.StringVal("nobody")}, ""},
	}
	for _, tt := range tests {
		errs := ImageSchema.Check(WithAttrs(none, tt.set))
		switch {
		case tt.want == "" && len(errs) > 0:
			t.Errorf("%v: unexpected %v", tt.set, errs)
		case tt.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Msg, tt.want)):
			t.Errorf("%v: errors %v, want %q", tt.set, errs, tt.want)
		}
	}
}

func TestConform(t *testing.T) {
	// A volume recorded before it had labels, with an attribute berth has
	// since dropped.
	old := cty.ObjectVal(map[string]cty.Value{
		"name":    cty.StringVal("data"),
		"path":    cty.StringVal("/var/lib/berth/volumes/data"),
		"retired": cty.True,
	})
	got := Conform(VolumeSchema, old)
	if !got.Type().Equals(VolumeSchema.ImpliedType()) {
		t.Fatalf("type %#v, want the schema's", got.Type())
	}
	if got.GetAttr("name").AsString() != "data" || !got.GetAttr("labels").IsNull() {
		t.Errorf("conformed %#v", got)
	}
	// A container recorded without the resources block and with a port
	// block that lacks host_ip.
	ctr := cty.ObjectVal(map[string]cty.Value{
		"name":  cty.StringVal("web"),
		"image": cty.StringVal("img"),
		"port":  cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"target": cty.NumberIntVal(80), "published": cty.NumberIntVal(8080)})}),
	})
	got = Conform(ContainerSchema, ctr)
	if !got.Type().Equals(ContainerSchema.ImpliedType()) {
		t.Fatalf("container type %#v", got.Type())
	}
	if p := got.GetAttr("port").Index(cty.NumberIntVal(0)); p.GetAttr("published").AsBigFloat().String() != "8080" || !p.GetAttr("host_ip").IsNull() {
		t.Errorf("port %#v", p)
	}
	if !got.GetAttr("resources").IsNull() || got.GetAttr("mount").LengthInt() != 0 {
		t.Errorf("blocks %#v", got)
	}
}

func TestHealthcheck(t *testing.T) {
	schema := ContainerSchema.Blocks["healthcheck"].Schema
	hc := func(set map[string]cty.Value) cty.Value {
		v := zeroOf(schema.ImpliedType())
		nulls := map[string]cty.Value{"command": cty.NullVal(cty.List(cty.String)), "shell": cty.NullVal(cty.String)}
		for k, x := range set {
			nulls[k] = x
		}
		return WithAttrs(v, nulls)
	}
	cmd := cty.ListVal([]cty.Value{cty.StringVal("true")})
	for _, tt := range []struct {
		set  map[string]cty.Value
		want string
	}{
		{map[string]cty.Value{"command": cmd}, ""},
		{map[string]cty.Value{"shell": cty.StringVal("test -f /ok")}, ""},
		{nil, "needs a check to run"},
		{map[string]cty.Value{"command": cmd, "shell": cty.StringVal("true")}, "not both"},
		{map[string]cty.Value{"command": cty.UnknownVal(cty.List(cty.String))}, ""},
	} {
		errs := checkHealthcheck(hc(tt.set))
		switch {
		case tt.want == "" && len(errs) > 0:
			t.Errorf("%v: %v", tt.set, errs)
		case tt.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Msg, tt.want)):
			t.Errorf("%v: %v, want %q", tt.set, errs, tt.want)
		}
	}

	var none HealthcheckSpec
	if none.Enabled() {
		t.Error("a zero healthcheck is enabled")
	}
	h := HealthcheckSpec{Shell: "test -f /ok", Interval: "2s", Timeout: "", StartPeriod: "1m"}
	if !h.Enabled() || strings.Join(h.Args(), " ") != "/bin/sh -c test -f /ok" {
		t.Errorf("shell check: enabled %v, args %q", h.Enabled(), h.Args())
	}
	iv, to, sp, r := h.Durations()
	if iv != 2*time.Second || to != 30*time.Second || sp != time.Minute || r != 3 {
		t.Errorf("Durations = %v %v %v %d", iv, to, sp, r)
	}
}
