package agent

import (
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// A one-off container's value is what a container block would give:
// the kind's defaults filled in, every validator run, errors naming the
// berth run flag.
func TestOneOffValue(t *testing.T) {
	v, err := oneOffValue(OneOff{
		Image: "app@sha256:0000", Command: []string{"sh"}, AutoRemove: true,
		Mounts:   []resource.MountSpec{{Target: "/src", Bind: "/home/me/src", ReadOnly: true}},
		Ports:    []resource.PortSpec{{Published: 8080, Target: 80, HostIP: "127.0.0.1", Protocol: "tcp"}},
		Networks: []string{"front"}, Memory: "64M", StopTimeout: "1s",
	}, "brave-heron")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Type().Equals(resource.ContainerSchema.ImpliedType()) {
		t.Fatalf("type %#v is not the container kind's", v.Type())
	}
	var spec resource.ContainerSpec
	if err := resource.Decode(v, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Name != "brave-heron" || spec.Restart != "no" || spec.StopSignal != "SIGTERM" || spec.StopTimeout != "1s" ||
		spec.Labels[resource.AutoRemoveLabel] != "true" || spec.Resources.Memory != "64M" ||
		len(spec.Networks) != 1 || spec.Networks[0].Name != "front" || len(spec.Ports) != 1 || !spec.Mounts[0].ReadOnly {
		t.Errorf("decoded %+v", spec)
	}
	if got := v.GetAttr("entrypoint"); !got.IsNull() {
		t.Errorf("entrypoint %#v, want null (the image's)", got)
	}
	if got := v.GetAttr("id"); !got.IsNull() || got.Type() != cty.String {
		t.Errorf("id %#v, want null until the driver fills it", got)
	}

	_, err = oneOffValue(OneOff{Image: "x", WorkingDir: "src", Memory: "1k", Ports: []resource.PortSpec{{Published: 80, Target: 80}}}, "x")
	for _, want := range []string{`--workdir: "src" must be an absolute path`, "--memory:", "--publish: a published port needs a network"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
}
