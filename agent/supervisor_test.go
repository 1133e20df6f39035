package agent

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/seed-e88ffcd2/berth/state"
	"github.com/zclconf/go-cty/cty"
)

func TestRecordedContainers(t *testing.T) {
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	put := func(project string, addr resource.Addr, attrs map[string]cty.Value) {
		t.Helper()
		if err := store.Put(project, &resource.Object{Addr: addr, Value: cty.ObjectVal(attrs)}); err != nil {
			t.Fatal(err)
		}
	}
	web := resource.Addr{Kind: resource.KindContainer, Name: "web", Key: resource.IntKey(0)}
	put("shop", web, map[string]cty.Value{"name": cty.StringVal("shop-web-0"), "id": cty.StringVal("shop-web-0")})
	put("shop", resource.Addr{Kind: resource.KindNetwork, Name: "lan"}, map[string]cty.Value{"name": cty.StringVal("shop-lan")})
	put("blog", resource.Addr{Kind: resource.KindContainer, Name: "db"}, map[string]cty.Value{"name": cty.StringVal("blog-db"), "id": cty.NullVal(cty.String)})
	h := &Host{Store: store}
	got, err := h.recordedContainers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"shop-web-0": "shop/container.web[0]", "blog-db": "blog/container.db"}
	if len(got) != len(want) {
		t.Fatalf("recorded = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("recorded[%s] = %q, want %q", k, got[k], v)
		}
	}
}
