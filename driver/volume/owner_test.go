package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

func ownedBy(project string) context.Context {
	return resource.WithOwner(context.Background(), resource.Owner{Project: project, Addr: addr})
}

// TestOwnership: a volume name another project's volume holds is refused
// by Preview and Create with that owner named, Observe says whose it is,
// and Delete leaves it and its data; the owner's own create adopts it with
// its data.
func TestOwnership(t *testing.T) {
	d := newDriver(t)
	hello, other := ownedBy("hello"), ownedBy("xproj")
	v, err := d.Create(hello, addr, volumeVal("data", nil))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(v.GetAttr("path").AsString(), "f")
	if err := os.WriteFile(data, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}

	want := `volume "data" already exists on this host and belongs to hello/volume.data; choose another name, or destroy it there`
	null := cty.NullVal(v.Type())
	if _, err := d.Preview(other, addr, null, volumeVal("data", nil)); !errors.Is(err, resource.ErrAlreadyExists) || err.Error() != want {
		t.Errorf("preview by another project = %v, want %q", err, want)
	}
	if _, err := d.Create(other, addr, volumeVal("data", nil)); !errors.Is(err, resource.ErrAlreadyExists) || err.Error() != "volume.data: "+want {
		t.Errorf("create by another project = %v, want %q", err, want)
	}
	if obs, err := d.Observe(other, addr, v); err != nil || obs.Health != resource.Missing || obs.DataBytes != 0 ||
		obs.Reason != "volume data now belongs to hello/volume.data" {
		t.Errorf("observe by another project = %+v, %v", obs, err)
	}
	if err := d.Delete(other, addr, v); err != nil {
		t.Errorf("delete by another project = %v, want success without touching it", err)
	}
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("another project's delete removed the data: %v", err)
	}

	if _, err := d.Preview(hello, addr, null, volumeVal("data", nil)); err != nil {
		t.Errorf("preview by the owner: %v", err)
	}
	if again, err := d.Create(hello, addr, volumeVal("data", nil)); err != nil || !again.RawEquals(v) {
		t.Errorf("create by the owner = %#v, %v; want it adopted", again, err)
	}
	if _, err := os.Stat(data); err != nil {
		t.Errorf("the owner's create lost the data: %v", err)
	}
	if _, err := d.Update(other, addr, v, volumeVal("data", map[string]string{"a": "1"})); !errors.Is(err, resource.ErrAlreadyExists) {
		t.Errorf("update by another project = %v, want refused", err)
	}
	if err := d.Delete(hello, addr, v); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the owner's delete kept the data: %v", err)
	}
}

// TestUnrecordedOwner: a volume directory without a recorded owner (an
// older berth's, or made by hand) is claimed only by a project whose
// state already holds it.
func TestUnrecordedOwner(t *testing.T) {
	d := newDriver(t)
	if err := os.Mkdir(d.dir("data"), 0o755); err != nil {
		t.Fatal(err)
	}
	v := volumeVal("data", nil)
	if _, err := d.Preview(ownedBy("p"), addr, cty.NullVal(v.Type()), v); !errors.Is(err, resource.ErrAlreadyExists) {
		t.Errorf("preview of a new volume = %v, want refused", err)
	}
	if _, err := d.Preview(ownedBy("p"), addr, v, v); err != nil {
		t.Errorf("preview of the volume in the state: %v", err)
	}
}
