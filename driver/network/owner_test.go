package network

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

func ownedBy(project, name string) context.Context {
	return resource.WithOwner(context.Background(), resource.Owner{Project: project, Addr: netAddr(name)})
}

// TestOwnership: a network name another project's network holds is
// refused by Preview and Create with that owner named, its bridge keeps
// its address, Observe says whose it is and Delete leaves it; the owner's
// own create adopts it when its addresses are as desired and refuses to
// re-address it otherwise.
func TestOwnership(t *testing.T) {
	e := newEnv(t)
	name := uniq("own")
	hello, other := ownedBy("hello", "front"), ownedBy("xproj", "n")
	v, err := e.d.Create(hello, netAddr("front"), netVal(name, nil))
	t.Cleanup(func() {
		if err := e.d.Delete(hello, netAddr("front"), v); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = deleteBridge(BridgeName(name))
	})
	if err != nil {
		t.Fatal(err)
	}
	subnet := v.GetAttr("subnet").AsString()

	want := `network "` + name + `" already exists on this host and belongs to hello/network.front; choose another name, or destroy it there`
	other10 := netVal(name, map[string]cty.Value{"subnet": cty.StringVal("10.199.250.0/24")})
	null := cty.NullVal(v.Type())
	for _, desired := range []cty.Value{netVal(name, nil), other10} {
		if _, err := e.d.Preview(other, netAddr("n"), null, desired); !errors.Is(err, resource.ErrAlreadyExists) || err.Error() != want {
			t.Errorf("preview by another project = %v, want %q", err, want)
		}
		if _, err := e.d.Create(other, netAddr("n"), desired); !errors.Is(err, resource.ErrAlreadyExists) || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("create by another project = %v, want %q", err, want)
		}
	}
	if rec, err := e.d.readRecord(name); err != nil || rec.Subnet != subnet || rec.Owner != "hello/network.front" {
		t.Fatalf("record after another project's create = %+v, %v", rec, err)
	}
	if obs, err := e.d.Observe(other, netAddr("n"), v); err != nil || obs.Health != resource.Missing ||
		obs.Reason != "network "+name+" now belongs to hello/network.front" {
		t.Errorf("observe by another project = %+v, %v", obs, err)
	}
	if err := e.d.Delete(other, netAddr("n"), v); err != nil {
		t.Errorf("delete by another project = %v, want success without touching it", err)
	}
	if ok, _ := bridgeExists(BridgeName(name)); !ok {
		t.Fatal("another project's delete removed the bridge")
	}

	if _, err := e.d.Preview(hello, netAddr("front"), null, netVal(name, nil)); err != nil {
		t.Errorf("preview by the owner: %v", err)
	}
	if again, err := e.d.Create(hello, netAddr("front"), netVal(name, nil)); err != nil || !again.RawEquals(v) {
		t.Errorf("create by the owner = %#v, %v; want it adopted as %#v", again, err, v)
	}
	_, err = e.d.Create(hello, netAddr("front"), other10)
	if !errors.Is(err, resource.ErrAlreadyExists) || !strings.Contains(err.Error(), "subnet "+subnet+", not 10.199.250.0/24") {
		t.Errorf("create by the owner with another subnet = %v, want refused", err)
	}
	if rec, _ := e.d.readRecord(name); rec.Subnet != subnet {
		t.Errorf("the refused create re-addressed the network to %s", rec.Subnet)
	}
}
