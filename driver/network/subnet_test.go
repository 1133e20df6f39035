package network

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// fakeDriver is a Driver whose host routes are given, for the decisions
// that need no kernel.
func fakeDriver(t *testing.T, routes ...hostRoute) *Driver {
	t.Helper()
	d, err := New(Config{StateDir: t.TempDir(), PluginDirs: []string{"/nonexistent"}, Pool: "10.213.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	d.routes = func() ([]hostRoute, error) { return routes, nil }
	return d
}

func route(dst, dev string) hostRoute {
	return hostRoute{dst: netip.MustParsePrefix(dst), dev: dev}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		routes  []hostRoute
		records []record
		want    wanted
		subnet  string
		gateway string
		err     string
	}{
		{name: "first /24 of the pool", want: wanted{name: "a"}, subnet: "10.213.0.0/24", gateway: "10.213.0.1"},
		{name: "default route ignored", routes: []hostRoute{route("0.0.0.0/0", "eth0")},
			want: wanted{name: "a"}, subnet: "10.213.0.0/24", gateway: "10.213.0.1"},
		{name: "skips routes", routes: []hostRoute{route("10.213.0.0/23", "eth1")},
			want: wanted{name: "a"}, subnet: "10.213.2.0/24", gateway: "10.213.2.1"},
		{name: "skips networks", records: []record{{Name: "b", Driver: "bridge", Subnet: "10.213.0.0/24"}},
			want: wanted{name: "a"}, subnet: "10.213.1.0/24", gateway: "10.213.1.1"},
		{name: "keeps its own subnet", records: []record{{Name: "a", Driver: "bridge", Subnet: "10.213.7.0/24", Gateway: "10.213.7.254"}},
			routes: []hostRoute{route("10.213.7.0/24", BridgeName("a"))},
			want:   wanted{name: "a"}, subnet: "10.213.7.0/24", gateway: "10.213.7.254"},
		{name: "user subnet and gateway", want: wanted{name: "a", subnet: "192.168.50.0/24", gateway: "192.168.50.254"},
			subnet: "192.168.50.0/24", gateway: "192.168.50.254"},
		{name: "user subnet overlaps a route", routes: []hostRoute{route("10.0.0.0/8", "eth0")},
			want: wanted{name: "a", subnet: "10.0.0.0/24"},
			err:  "subnet 10.0.0.0/24 overlaps the route 10.0.0.0/8 via eth0; choose another subnet"},
		{name: "user subnet overlaps a network", records: []record{{Name: "b", Driver: "bridge", Subnet: "10.1.0.0/16"}},
			want: wanted{name: "a", subnet: "10.1.2.0/24"},
			err:  "subnet 10.1.2.0/24 overlaps network b (10.1.0.0/16); choose another subnet"},
		{name: "gateway outside", want: wanted{name: "a", subnet: "10.1.2.0/24", gateway: "10.1.3.1"},
			err: "gateway 10.1.3.1 is not a host address of subnet 10.1.2.0/24"},
		{name: "gateway is broadcast", want: wanted{name: "a", subnet: "10.1.2.0/24", gateway: "10.1.2.255"},
			err: "not a host address"},
		{name: "pool exhausted", routes: []hostRoute{route("10.213.0.0/16", "eth1")},
			want: wanted{name: "a"}, err: "no free /24 is left in the pool 10.213.0.0/16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := fakeDriver(t, tt.routes...)
			for _, r := range tt.records {
				if err := d.writeRecord(r); err != nil {
					t.Fatal(err)
				}
			}
			n, err := d.resolve(tt.want)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.subnet.String() != tt.subnet || n.gateway.String() != tt.gateway {
				t.Fatalf("got %s gateway %s, want %s gateway %s", n.subnet, n.gateway, tt.subnet, tt.gateway)
			}
		})
	}
}

func TestNewRefusesForeignPools(t *testing.T) {
	for _, pool := range []string{"172.16.0.0/12", "10.88.0.0/16", "10.0.0.0/8", "10.213.0.0/25", "10.213.0.1/16", "fd00::/64"} {
		if _, err := New(Config{StateDir: t.TempDir(), PluginDirs: []string{"/x"}, Pool: pool}); err == nil {
			t.Errorf("pool %s accepted", pool)
		}
	}
}

func newNetVal(name, driver string) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"name":     cty.StringVal(name),
		"driver":   cty.StringVal(driver),
		"subnet":   cty.UnknownVal(cty.String),
		"gateway":  cty.UnknownVal(cty.String),
		"internal": cty.False,
		"labels":   cty.MapValEmpty(cty.String),
		"bridge":   cty.UnknownVal(cty.String),
	})
}

// Two networks planned together get different subnets, and planning one
// again gives it the same.
func TestPreviewReservesSubnets(t *testing.T) {
	ctx := context.Background()
	d := fakeDriver(t)
	null := cty.NullVal(resource.NetworkSchema.ImpliedType())
	preview := func(name string) string {
		t.Helper()
		v, err := d.Preview(ctx, resource.Addr{Kind: resource.KindNetwork, Name: name}, null, newNetVal(name, "bridge"))
		if err != nil {
			t.Fatal(err)
		}
		if b := v.GetAttr("bridge").AsString(); b != BridgeName(name) {
			t.Fatalf("bridge = %s", b)
		}
		return v.GetAttr("subnet").AsString() + " " + v.GetAttr("gateway").AsString()
	}
	a, b, a2 := preview("a"), preview("b"), preview("a")
	if a != "10.213.0.0/24 10.213.0.1" || b != "10.213.1.0/24 10.213.1.1" || a2 != a {
		t.Fatalf("previews: a=%s b=%s a again=%s", a, b, a2)
	}

	v, err := d.Preview(ctx, resource.Addr{Kind: resource.KindNetwork, Name: "h"}, null, newNetVal("h", "host"))
	if err != nil {
		t.Fatal(err)
	}
	if !v.GetAttr("subnet").IsNull() || !v.GetAttr("bridge").IsNull() {
		t.Fatalf("host network previewed as %#v", v)
	}
	bad := resource.WithAttrs(newNetVal("h", "none"), map[string]cty.Value{"subnet": cty.StringVal("10.9.0.0/24")})
	if _, err := d.Preview(ctx, resource.Addr{Kind: resource.KindNetwork, Name: "h"}, null, bad); err == nil {
		t.Fatal("a none network with a subnet was accepted")
	}
}

func TestConflist(t *testing.T) {
	tests := []struct {
		internal  bool
		netfilter string
		masq      bool
		routes    int
		plugins   []string
	}{
		{internal: false, netfilter: "iptables", masq: true, routes: 1, plugins: []string{"bridge", "portmap", "firewall"}},
		{internal: true, netfilter: "iptables", masq: false, routes: 0, plugins: []string{"bridge", "portmap", "firewall"}},
		{internal: false, netfilter: "nftables", masq: true, routes: 1, plugins: []string{"bridge", "portmap"}},
	}
	for _, tt := range tests {
		n := &bridgeNet{name: "web", subnet: netip.MustParsePrefix("10.213.4.0/24"), gateway: netip.MustParsePrefix("10.213.4.1/32").Addr(),
			bridge: BridgeName("web"), internal: tt.internal}
		data, err := n.conflist("/state/ipam", tt.netfilter)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			CNIVersion string           `json:"cniVersion"`
			Name       string           `json:"name"`
			Plugins    []map[string]any `json:"plugins"`
		}
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, p := range got.Plugins {
			types = append(types, p["type"].(string))
		}
		if got.CNIVersion != "1.0.0" || got.Name != "web" || !slices.Equal(types, tt.plugins) {
			t.Fatalf("conflist:\n%s", data)
		}
		br, pm := got.Plugins[0], got.Plugins[1]
		routes, _ := br["ipam"].(map[string]any)["routes"].([]any)
		if br["ipMasq"] != tt.masq || len(routes) != tt.routes || br["bridge"] != BridgeName("web") || pm["backend"] != tt.netfilter {
			t.Fatalf("internal=%v conflist:\n%s", tt.internal, data)
		}
	}
	if b := BridgeName("a-very-long-network-name-indeed"); len(b) != 11 || !strings.HasPrefix(b, "bn-") {
		t.Fatalf("bridge name %q", b)
	}
}
