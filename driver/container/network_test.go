package container

import (
	"context"
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/driver/network"
	"github.com/seed-e88ffcd2/berth/internal/testutil"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// TestReachPeerByNameOnBridge runs two containers on a real CNI bridge
// network; one fetches a page from the other by its name and by an alias.
func TestReachPeerByNameOnBridge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nets, err := network.New(network.Config{
		StateDir:   t.TempDir(),
		PluginDirs: []string{testutil.CNIPath(t)},
		// Away from the default pool, which other tests on the host use.
		Pool: "10.231.0.0/16",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.d.networks = nets
	netName := uniqueName("net")
	netAddr := resource.Addr{Kind: resource.KindNetwork, Name: netName}
	nv, err := nets.Create(ctx, netAddr, obj(resource.NetworkSchema, map[string]cty.Value{"name": cty.StringVal(netName)}))
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the containers', so it runs after their deletion.
	t.Cleanup(func() {
		if err := nets.Delete(ctx, netAddr, nv); err != nil {
			t.Errorf("delete network: %v", err)
		}
	})

	server := uniqueName("web")
	_, sv := e.create(t, container(server, []string{"httpd", "-f", "-p", "8080", "-h", "/www"}, map[string]cty.Value{
		"network": networks(map[string]cty.Value{"name": cty.StringVal(netName), "aliases": strs("web")}),
	}))
	if ip := sv.GetAttr("ip_address").AsString(); !strings.HasPrefix(ip, "10.231.") {
		t.Fatalf("server address %q is not from the network's subnet", ip)
	}
	addr, cv := e.create(t, container(uniqueName("client"), []string{"sh", "-c",
		"for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://" + server + ":8080/index.html && break; sleep 0.2; done; " +
			"wget -q -O - http://web:8080/index.html"}, map[string]cty.Value{
		"network": networks(map[string]cty.Value{"name": cty.StringVal(netName)}),
	}))
	obs := e.waitExit(t, addr, cv)
	if out := e.stdout(t, cv); out != "hello from busybox\nhello from busybox\n" {
		t.Errorf("client got %q (%s)", out, obs.Reason)
		t.Log(e.output(t, addr.Name, "stderr"))
	}
}
