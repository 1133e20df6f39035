package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/internal/testutil"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/zclconf/go-cty/cty"
)

// These tests change the real kernel: bridges, veths, namespaces, netfilter
// rules. Every name carries a random suffix and everything is removed in
// t.Cleanup; traffic goes only to loopback and to the test's namespaces.

// testPool picks a /16 no host route touches, so tests running side by side
// (and other packages' tests) do not share subnets.
func testPool(t testing.TB) string {
	t.Helper()
	routes, err := netlinkRoutes()
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(160 + rand.IntN(40)), 0, 0}), 16)
		if !slices.ContainsFunc(routes, func(r hostRoute) bool { return r.dst.Bits() > 0 && r.dst.Overlaps(p) }) {
			return p.String()
		}
	}
	t.Fatal("no free test pool in 10.160.0.0/11")
	return ""
}

type env struct {
	t testing.TB
	d *Driver
}

func newEnv(t testing.TB) *env {
	t.Helper()
	testutil.RequireRoot(t)
	d, err := New(Config{StateDir: t.TempDir(), PluginDirs: []string{testutil.CNIPath(t)}, Pool: testPool(t)})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, d: d}
}

func uniq(prefix string) string { return fmt.Sprintf("%s-%08x", prefix, rand.Uint32()) }

func netAddr(name string) resource.Addr {
	return resource.Addr{Kind: resource.KindNetwork, Name: name}
}

// netVal is a network as apply hands it to Create: computed attributes the
// user left unset are null.
func netVal(name string, set map[string]cty.Value) cty.Value {
	v := cty.ObjectVal(map[string]cty.Value{
		"name":     cty.StringVal(name),
		"driver":   cty.StringVal("bridge"),
		"subnet":   cty.NullVal(cty.String),
		"gateway":  cty.NullVal(cty.String),
		"internal": cty.False,
		"labels":   cty.MapValEmpty(cty.String),
		"bridge":   cty.NullVal(cty.String),
	})
	return resource.WithAttrs(v, set)
}

// create makes a network and removes it (and its bridge, whatever the test
// did) at cleanup.
func (e *env) create(name string, set map[string]cty.Value) cty.Value {
	e.t.Helper()
	v, err := e.d.Create(context.Background(), netAddr(name), netVal(name, set))
	e.t.Cleanup(func() {
		if v != cty.NilVal {
			if err := e.d.Delete(context.Background(), netAddr(name), v); err != nil {
				e.t.Errorf("cleanup: %v", err)
			}
		}
		_ = deleteBridge(BridgeName(name))
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// netns makes a named network namespace, removed at cleanup.
func (e *env) netns() string {
	e.t.Helper()
	name := uniq("berth-nt")
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		e.t.Fatalf("ip netns add: %v: %s", err, out)
	}
	e.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	return "/run/netns/" + name
}

// attach attaches and detaches at cleanup, before the namespace goes.
func (e *env) attach(a driver.Attachment) (driver.AttachResult, error) {
	e.t.Helper()
	res, err := e.d.Attach(context.Background(), a)
	e.t.Cleanup(func() {
		if err := e.d.Detach(context.Background(), a); err != nil {
			e.t.Errorf("cleanup: %v", err)
		}
	})
	return res, err
}

// serve listens on port inside the namespace and answers every connection
// with reply. The socket stays in the namespace it was made in, so only
// the listen needs the thread switched.
func serve(t *testing.T, nsPath string, port int, reply string) {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	l, err := func() (net.Listener, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return nil, err
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			return nil, err
		}
		defer func() {
			if err := netns.Set(orig); err != nil {
				panic("cannot return the thread to the host namespace: " + err.Error())
			}
		}()
		return net.Listen("tcp4", ":"+strconv.Itoa(port))
	}()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, reply)
			c.Close()
		}
	}()
}

func dial(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return string(b)
}

// freePort is a loopback TCP port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ruleset is the host's netfilter rules as iptables and nft show them.
func ruleset(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v: %s", err, out)
	}
	if nft, err := exec.LookPath("nft"); err == nil {
		more, err := exec.Command(nft, "list", "ruleset").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list ruleset: %v: %s", err, more)
		}
		out = append(out, more...)
	}
	return string(out)
}

func linesWith(text string, all ...string) []string {
	var out []string
	for line := range strings.Lines(text) {
		if !slices.ContainsFunc(all, func(s string) bool { return !strings.Contains(line, s) }) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

func TestBridgeLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	name := uniq("lc")
	v := e.create(name, nil)
	subnet := netip.MustParsePrefix(v.GetAttr("subnet").AsString())
	gateway := v.GetAttr("gateway").AsString()
	bridge := v.GetAttr("bridge").AsString()
	if bridge != BridgeName(name) || subnet.Bits() != 24 || gateway != subnet.Addr().Next().String() {
		t.Fatalf("created %#v", v)
	}
	if ok, _ := bridgeExists(bridge); !ok {
		t.Fatalf("bridge %s was not created", bridge)
	}
	if again, err := e.d.Create(ctx, netAddr(name), netVal(name, nil)); err != nil || !again.RawEquals(v) {
		t.Fatalf("second create = %#v, %v; want %#v", again, err, v)
	}
	if mode, err := e.d.Mode(ctx, name); err != nil || mode != "bridge" {
		t.Fatalf("mode = %q, %v", mode, err)
	}

	ns := e.netns()
	id := uniq("ctr")
	hostPort := freePort(t)
	a := driver.Attachment{Network: name, ContainerID: id, NetNS: ns, IfName: "eth0",
		Ports: []resource.PortSpec{{Target: 8080, Published: hostPort, HostIP: "127.0.0.1", Protocol: "tcp"}}}
	start := time.Now()
	res, err := e.attach(a)
	addTook := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if ip := netip.MustParseAddr(res.IPv4); !subnet.Contains(ip) || res.Gateway != gateway {
		t.Fatalf("attach = %+v, want an address of %s via %s", res, subnet, gateway)
	}
	if again, err := e.d.Attach(ctx, a); err != nil || again != res {
		t.Fatalf("second attach = %+v, %v; want %+v", again, err, res)
	}
	if !linkExists(ns, "eth0") || !linkUp(t, ns, "lo") {
		t.Fatal("eth0 missing or lo down in the namespace")
	}

	serve(t, ns, 8080, "hello "+id)
	for _, addr := range []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)), net.JoinHostPort(res.IPv4, "8080")} {
		if got := dial(t, addr); got != "hello "+id {
			t.Fatalf("%s answered %q", addr, got)
		}
	}
	rules := ruleset(t)
	if len(linesWith(rules, id)) == 0 {
		t.Fatalf("no netfilter rule names container %s:\n%s", id, rules)
	}

	err = e.d.Delete(ctx, netAddr(name), v)
	if !errors.Is(err, resource.ErrConflict) || !strings.Contains(err.Error(), id) {
		t.Fatalf("delete with a container attached = %v, want a conflict naming %s", err, id)
	}

	start = time.Now()
	if err := e.d.Detach(ctx, a); err != nil {
		t.Fatal(err)
	}
	t.Logf("attach (CNI ADD) took %v, detach (CNI DEL) %v, netfilter backend %s", addTook, time.Since(start), e.d.netfilter)
	if err := e.d.Detach(ctx, a); err != nil {
		t.Fatalf("second detach: %v", err)
	}
	if linkExists(ns, "eth0") {
		t.Fatal("eth0 is still in the namespace")
	}
	rules = ruleset(t)
	if left := append(linesWith(rules, id), linesWith(rules, res.IPv4+" ")...); len(left) > 0 {
		t.Fatalf("rules left after detach:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(filepath.Join(e.d.ipamDir(), name, res.IPv4)); !os.IsNotExist(err) {
		t.Fatalf("address %s still reserved: %v", res.IPv4, err)
	}

	if err := e.d.Delete(ctx, netAddr(name), v); err != nil {
		t.Fatal(err)
	}
	if ok, _ := bridgeExists(bridge); ok {
		t.Fatalf("bridge %s is still there", bridge)
	}
	if err := e.d.Delete(ctx, netAddr(name), v); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := e.d.Mode(ctx, name); !errors.Is(err, resource.ErrNotFound) {
		t.Fatalf("mode of a deleted network = %v", err)
	}
}

func linkUp(t *testing.T, nsPath, name string) bool {
	t.Helper()
	up := false
	err := inNetNS(nsPath, func(h *netlink.Handle) error {
		l, err := h.LinkByName(name)
		if err == nil {
			up = l.Attrs().Flags&net.FlagUp != 0
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return up
}

func TestAttach(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, e *env, network string, subnet netip.Prefix)
	}{
		{"static address", func(t *testing.T, e *env, network string, subnet netip.Prefix) {
			want := fromU32(toU32(subnet.Addr()) + 77).String()
			res, err := e.attach(driver.Attachment{Network: network, ContainerID: uniq("ctr"), NetNS: e.netns(), IPv4: want})
			if err != nil {
				t.Fatal(err)
			}
			if res.IPv4 != want {
				t.Fatalf("got %s, want %s", res.IPv4, want)
			}
			_, err = e.attach(driver.Attachment{Network: network, ContainerID: uniq("ctr"), NetNS: e.netns(), IPv4: want})
			if !errors.Is(err, resource.ErrConflict) {
				t.Fatalf("second holder of %s: %v, want a conflict", want, err)
			}
		}},
		{"host port published twice", func(t *testing.T, e *env, network string, _ netip.Prefix) {
			port := freePort(t)
			first := uniq("ctr")
			publish := func(id, hostIP, proto string) driver.Attachment {
				return driver.Attachment{Network: network, ContainerID: id, NetNS: e.netns(),
					Ports: []resource.PortSpec{{Target: 80, Published: port, HostIP: hostIP, Protocol: proto}}}
			}
			if _, err := e.attach(publish(first, "127.0.0.1", "tcp")); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct{ hostIP, proto string }{{"127.0.0.1", "tcp"}, {"0.0.0.0", "tcp"}} {
				second := publish(uniq("ctr"), c.hostIP, c.proto)
				_, err := e.attach(second)
				// Their mapping, whichever address the second asked for.
				want := fmt.Sprintf("host port 127.0.0.1:%d/tcp is already published by container %s (network %s)", port, first, network)
				if !errors.Is(err, resource.ErrConflict) || !strings.HasSuffix(err.Error(), want) {
					t.Fatalf("%s:%d/%s again: %v, want a conflict ending %q", c.hostIP, port, c.proto, err, want)
				}
				if linkExists(second.NetNS, "eth0") {
					t.Fatal("the refused attachment changed its namespace")
				}
			}
			if _, err := e.attach(publish(uniq("ctr"), "127.0.0.1", "udp")); err != nil {
				t.Fatalf("same port over udp: %v", err)
			}
		}},
		{"host port held by a process", func(t *testing.T, e *env, network string, _ netip.Prefix) {
			l, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			port := l.Addr().(*net.TCPAddr).Port
			_, err = e.attach(driver.Attachment{Network: network, ContainerID: uniq("ctr"), NetNS: e.netns(),
				Ports: []resource.PortSpec{{Target: 80, Published: port, HostIP: "0.0.0.0", Protocol: "tcp"}}})
			if !errors.Is(err, resource.ErrConflict) || !strings.Contains(err.Error(), "process") {
				t.Fatalf("attach = %v, want a conflict with a host process", err)
			}
		}},
		{"unknown network", func(t *testing.T, e *env, _ string, _ netip.Prefix) {
			_, err := e.d.Attach(context.Background(), driver.Attachment{Network: uniq("nope"), ContainerID: uniq("ctr"), NetNS: e.netns()})
			if !errors.Is(err, resource.ErrNotFound) {
				t.Fatalf("attach = %v, want not found", err)
			}
		}},
		{"gc detaches what is not kept", func(t *testing.T, e *env, network string, _ netip.Prefix) {
			kept := driver.Attachment{Network: network, ContainerID: uniq("ctr"), NetNS: e.netns()}
			gone := driver.Attachment{Network: network, ContainerID: uniq("ctr"), NetNS: e.netns(),
				Ports: []resource.PortSpec{{Target: 80, Published: freePort(t), HostIP: "127.0.0.1", Protocol: "tcp"}}}
			for _, a := range []driver.Attachment{kept, gone} {
				if _, err := e.attach(a); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.d.GC(context.Background(), []driver.Attachment{kept}); err != nil {
				t.Fatal(err)
			}
			if !linkExists(kept.NetNS, "eth0") || linkExists(gone.NetNS, "eth0") {
				t.Fatal("GC removed the kept attachment or kept the other")
			}
			if left := linesWith(ruleset(t), gone.ContainerID); len(left) > 0 {
				t.Fatalf("rules left after GC:\n%s", strings.Join(left, "\n"))
			}
			if ids, err := e.d.attachedTo(network); err != nil || len(ids) != 1 || !strings.HasPrefix(ids[0], kept.ContainerID+"/") {
				t.Fatalf("attached after GC: %v, %v", ids, err)
			}
		}},
		{"detach after the namespace is gone", func(t *testing.T, e *env, network string, _ netip.Prefix) {
			a := driver.Attachment{Network: network, ContainerID: uniq("ctr"), NetNS: e.netns(),
				Ports: []resource.PortSpec{{Target: 80, Published: freePort(t), HostIP: "127.0.0.1", Protocol: "tcp"}}}
			res, err := e.attach(a)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("ip", "netns", "del", filepath.Base(a.NetNS)).CombinedOutput(); err != nil {
				t.Fatalf("ip netns del: %v: %s", err, out)
			}
			if err := e.d.Detach(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			rules := ruleset(t)
			if left := append(linesWith(rules, a.ContainerID), linesWith(rules, res.IPv4+" ")...); len(left) > 0 {
				t.Fatalf("rules left after detach:\n%s", strings.Join(left, "\n"))
			}
		}},
		{"detach what is not attached", func(t *testing.T, e *env, network string, _ netip.Prefix) {
			for _, ns := range []string{e.netns(), "/run/netns/" + uniq("berth-gone")} {
				if err := e.d.Detach(context.Background(), driver.Attachment{Network: network, ContainerID: uniq("ctr"), NetNS: ns}); err != nil {
					t.Fatalf("namespace %s: %v", ns, err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			name := uniq("at")
			v := e.create(name, nil)
			tt.run(t, e, name, netip.MustParsePrefix(v.GetAttr("subnet").AsString()))
		})
	}
}

func TestNetworks(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"subnet overlapping another network", func(t *testing.T, e *env) {
			first := uniq("ov")
			v := e.create(first, nil)
			second := uniq("ov")
			desired := netVal(second, map[string]cty.Value{"subnet": v.GetAttr("subnet")})
			null := cty.NullVal(resource.NetworkSchema.ImpliedType())
			_, perr := e.d.Preview(ctx, netAddr(second), null, desired)
			_, cerr := e.d.Create(ctx, netAddr(second), desired)
			want := fmt.Sprintf("subnet %s overlaps network %s (%s); choose another subnet", v.GetAttr("subnet").AsString(), first, v.GetAttr("subnet").AsString())
			for _, err := range []error{perr, cerr} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
			}
			if ok, _ := bridgeExists(BridgeName(second)); ok {
				t.Fatal("a refused network made its bridge")
			}
		}},
		{"preview chooses what create makes", func(t *testing.T, e *env) {
			e.create(uniq("pv"), nil)
			name := uniq("pv")
			null := cty.NullVal(resource.NetworkSchema.ImpliedType())
			p, err := e.d.Preview(ctx, netAddr(name), null, newNetVal(name, "bridge"))
			if err != nil {
				t.Fatal(err)
			}
			v := e.create(name, nil)
			if !p.RawEquals(v) {
				t.Fatalf("preview %#v, create %#v", p, v)
			}
			// Planned again as it stands: the subnet is kept even though its
			// route now exists.
			p2, err := e.d.Preview(ctx, netAddr(name), v, resource.WithAttrs(v, map[string]cty.Value{"bridge": cty.UnknownVal(cty.String)}))
			if err != nil || !p2.RawEquals(v) {
				t.Fatalf("preview of the existing network = %#v, %v", p2, err)
			}
		}},
		{"bridge deleted by hand", func(t *testing.T, e *env) {
			name := uniq("ob")
			v := e.create(name, nil)
			if obs, err := e.d.Observe(ctx, netAddr(name), v); err != nil || obs.Health != resource.Healthy {
				t.Fatalf("observe = %+v, %v", obs, err)
			}
			if err := deleteBridge(v.GetAttr("bridge").AsString()); err != nil {
				t.Fatal(err)
			}
			obs, err := e.d.Observe(ctx, netAddr(name), v)
			if err != nil || obs.Health != resource.Missing || !strings.Contains(obs.Reason, "bridge "+BridgeName(name)+" was deleted outside berth") {
				t.Fatalf("observe = %+v, %v", obs, err)
			}
			if again := e.create(name, nil); !again.RawEquals(v) {
				t.Fatalf("recreated as %#v, want %#v", again, v)
			}
			if obs, err := e.d.Observe(ctx, netAddr(name), v); err != nil || obs.Health != resource.Healthy {
				t.Fatalf("observe after recreate = %+v, %v", obs, err)
			}
		}},
		{"internal network does not masquerade", func(t *testing.T, e *env) {
			name := uniq("in")
			e.create(name, map[string]cty.Value{"internal": cty.True})
			id := uniq("ctr")
			ns := e.netns()
			res, err := e.attach(driver.Attachment{Network: name, ContainerID: id, NetNS: ns})
			if err != nil {
				t.Fatal(err)
			}
			rules := ruleset(t)
			for _, key := range []string{id, res.IPv4 + " "} {
				for _, masq := range []string{"MASQUERADE", "masquerade"} {
					if l := linesWith(rules, key, masq); len(l) > 0 {
						t.Fatalf("masquerade rules for an internal network:\n%s", strings.Join(l, "\n"))
					}
				}
			}
			var defaultRoute bool
			if err := inNetNS(ns, func(h *netlink.Handle) error {
				routes, err := h.RouteList(nil, netlink.FAMILY_V4)
				for _, r := range routes {
					defaultRoute = defaultRoute || r.Dst == nil || r.Dst.IP.IsUnspecified()
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if defaultRoute {
				t.Fatal("a container of an internal network has a default route")
			}
		}},
		{"labels update in place", func(t *testing.T, e *env) {
			name := uniq("lb")
			v := e.create(name, nil)
			desired := netVal(name, map[string]cty.Value{"labels": cty.MapVal(map[string]cty.Value{"tier": cty.StringVal("db")})})
			u, err := e.d.Update(ctx, netAddr(name), v, desired)
			if err != nil {
				t.Fatal(err)
			}
			if !u.GetAttr("subnet").RawEquals(v.GetAttr("subnet")) || u.GetAttr("labels").LengthInt() != 1 {
				t.Fatalf("updated to %#v", u)
			}
		}},
		{"host and none", func(t *testing.T, e *env) {
			for _, mode := range []string{"host", "none"} {
				name := uniq(mode)
				v := e.create(name, map[string]cty.Value{"driver": cty.StringVal(mode)})
				if got, err := e.d.Mode(ctx, name); err != nil || got != mode {
					t.Fatalf("mode = %q, %v", got, err)
				}
				if ok, _ := bridgeExists(BridgeName(name)); ok || !v.GetAttr("subnet").IsNull() {
					t.Fatalf("%s network made a bridge or got a subnet: %#v", mode, v)
				}
				if obs, err := e.d.Observe(ctx, netAddr(name), v); err != nil || obs.Health != resource.Healthy {
					t.Fatalf("observe = %+v, %v", obs, err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newEnv(t)) })
	}
}

// BenchmarkAttachDetach measures one CNI ADD and one DEL with a published
// port: what a container start and stop pay on a bridge network.
func BenchmarkAttachDetach(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	name := uniq("bn")
	e.create(name, nil)
	ns := e.netns()
	a := driver.Attachment{Network: name, NetNS: ns,
		Ports: []resource.PortSpec{{Target: 80, Published: freePort(b), HostIP: "127.0.0.1", Protocol: "tcp"}}}
	var add, del time.Duration
	for i := 0; b.Loop(); i++ {
		a.ContainerID = fmt.Sprintf("bench-%d", i)
		start := time.Now()
		if _, err := e.d.Attach(ctx, a); err != nil {
			b.Fatal(err)
		}
		add += time.Since(start)
		start = time.Now()
		if err := e.d.Detach(ctx, a); err != nil {
			b.Fatal(err)
		}
		del += time.Since(start)
	}
	b.ReportMetric(float64(add.Milliseconds())/float64(b.N), "ms/add")
	b.ReportMetric(float64(del.Milliseconds())/float64(b.N), "ms/del")
}
