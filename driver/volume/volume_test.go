package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

func volumeVal(name string, labels map[string]string) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"name":   cty.StringVal(name),
		"labels": resource.StringMapVal(labels),
		"path":   cty.NullVal(cty.String),
	})
}

func newDriver(t *testing.T) *Driver {
	t.Helper()
	d, err := New(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var addr = resource.Addr{Kind: resource.KindVolume, Name: "data"}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// steps run in order on the same driver and volume
		run func(t *testing.T, d *Driver)
	}{
		{"create twice keeps data", func(t *testing.T, d *Driver) {
			v, err := d.Create(ctx, addr, volumeVal("data", nil))
			if err != nil {
				t.Fatal(err)
			}
			path := v.GetAttr("path").AsString()
			if path != filepath.Join(d.cfg.Root, "data") {
				t.Fatalf("path = %s", path)
			}
			if err := os.WriteFile(filepath.Join(path, "f"), []byte("12345"), 0o644); err != nil {
				t.Fatal(err)
			}
			v2, err := d.Create(ctx, addr, volumeVal("data", nil))
			if err != nil {
				t.Fatal(err)
			}
			if !v2.RawEquals(v) {
				t.Fatalf("second create returned %#v, want %#v", v2, v)
			}
			obs, err := d.Observe(ctx, addr, v)
			if err != nil {
				t.Fatal(err)
			}
			if obs.Health != resource.Healthy || obs.DataBytes != 5 {
				t.Fatalf("observe = %+v, want healthy with 5 bytes", obs)
			}
		}},
		{"update records labels", func(t *testing.T, d *Driver) {
			v, err := d.Create(ctx, addr, volumeVal("data", map[string]string{"a": "1"}))
			if err != nil {
				t.Fatal(err)
			}
			v2, err := d.Update(ctx, addr, v, volumeVal("data", map[string]string{"a": "2"}))
			if err != nil {
				t.Fatal(err)
			}
			if !v2.GetAttr("path").RawEquals(v.GetAttr("path")) {
				t.Fatal("update lost the path")
			}
			data, err := os.ReadFile(d.metaPath("data"))
			if err != nil {
				t.Fatal(err)
			}
			if want := `"a": "2"`; !strings.Contains(string(data), want) {
				t.Fatalf("metadata %s lacks %s", data, want)
			}
		}},
		{"delete twice and observe missing", func(t *testing.T, d *Driver) {
			v, err := d.Create(ctx, addr, volumeVal("data", nil))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(v.GetAttr("path").AsString(), "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := d.Delete(ctx, addr, v); err != nil {
					t.Fatal(err)
				}
			}
			obs, err := d.Observe(ctx, addr, v)
			if err != nil {
				t.Fatal(err)
			}
			if obs.Health != resource.Missing {
				t.Fatalf("observe after delete = %+v", obs)
			}
			if _, err := d.Path(ctx, "data"); !errors.Is(err, resource.ErrNotFound) {
				t.Fatalf("Path after delete: %v", err)
			}
			if _, err := os.Stat(d.metaPath("data")); !os.IsNotExist(err) {
				t.Fatalf("metadata left behind: %v", err)
			}
		}},
		{"path of unknown and bad names", func(t *testing.T, d *Driver) {
			for _, name := range []string{"nope", "", "..", "a/b", metaDir} {
				if _, err := d.Path(ctx, name); !errors.Is(err, resource.ErrNotFound) {
					t.Errorf("Path(%q) = %v, want ErrNotFound", name, err)
				}
			}
			if _, err := d.Create(ctx, addr, volumeVal("../x", nil)); err == nil {
				t.Fatal("create accepted a name with a slash")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newDriver(t)) })
	}
}
