package container

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/driver/volume"
	"github.com/seed-e88ffcd2/berth/internal/logfile"
	"github.com/seed-e88ffcd2/berth/internal/testutil"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// Keeping the main thread for the main goroutine stops libcontainer's
// mount-source goroutine, which joins a container's mount namespace and
// then exits without unlocking its thread, from ever running there: Go
// cannot end the main thread, so it would stay in that namespace and
// /proc/self (the main thread) with it. cmd/berth does the same.
func init() { runtime.LockOSThread() }

// TestMain lets the test binary serve as the containers' init.
func TestMain(m *testing.M) {
	Init()
	code := m.Run()
	// Destroy removes each container's cgroup but not the parent.
	_ = removeCgroup(testCgroupParent)
	os.Exit(code)
}

type fakeImages struct{ info driver.ImageInfo }

func (f *fakeImages) Resolve(_ context.Context, ref string) (*driver.ImageInfo, error) {
	if ref != f.info.Ref {
		return nil, fmt.Errorf("image %s: %w", ref, resource.ErrNotFound)
	}
	info := f.info
	return &info, nil
}

// fakeNetworks knows networks by mode and hands out addresses without
// making interfaces: enough to test namespaces and name resolution.
type fakeNetworks struct {
	modes    map[string]string
	mu       sync.Mutex
	next     int
	attached map[string]driver.Attachment // by container id and network
}

func (f *fakeNetworks) Mode(_ context.Context, name string) (string, error) {
	m, ok := f.modes[name]
	if !ok {
		return "", fmt.Errorf("network %s: %w", name, resource.ErrNotFound)
	}
	return m, nil
}

func (f *fakeNetworks) Attach(_ context.Context, a driver.Attachment) (driver.AttachResult, error) {
	if _, err := os.Stat(a.NetNS); err != nil {
		return driver.AttachResult{}, fmt.Errorf("namespace: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	f.attached[a.ContainerID+"/"+a.Network] = a
	return driver.AttachResult{IPv4: fmt.Sprintf("10.250.0.%d", f.next+1), Gateway: "10.250.0.1"}, nil
}

// Detach fails on a cancelled context, as running CNI DEL does.
func (f *fakeNetworks) Detach(ctx context.Context, a driver.Attachment) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.attached, a.ContainerID+"/"+a.Network)
	return nil
}

type env struct {
	d    *Driver
	vols *volume.Driver
	nets *fakeNetworks
	cfg  Config
}

const (
	testImage        = "test/busybox:1"
	testCgroupParent = "/berth-test"
)

func newEnv(t testing.TB) *env {
	t.Helper()
	testutil.RequireRoot(t)
	root := t.TempDir()
	cfg := Config{
		StateDir:     filepath.Join(root, "containers"),
		RunDir:       filepath.Join(root, "run"),
		CgroupParent: testCgroupParent,
		Monitor:      testutil.Monitor(t),
		LogMaxSize:   1 << 20,
		LogMaxFiles:  2,
	}
	vols, err := volume.New(volume.Config{Root: filepath.Join(root, "volumes")})
	if err != nil {
		t.Fatal(err)
	}
	layer := testutil.BusyboxRootfs(t)
	// t.TempDir makes it 0700, as no image root is: non-root users could
	// not reach anything.
	if err := os.Chmod(layer, 0o755); err != nil {
		t.Fatal(err)
	}
	images := &fakeImages{info: driver.ImageInfo{
		Ref:    testImage,
		ID:     "sha256:test",
		Layers: []string{layer},
		Config: driver.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}},
	}}
	nets := &fakeNetworks{
		modes:    map[string]string{"none": "none", "host": "host", "n1": "bridge", "n2": "bridge"},
		attached: map[string]driver.Attachment{},
	}
	d, err := New(cfg, images, nets, vols)
	if err != nil {
		t.Fatal(err)
	}
	return &env{d: d, vols: vols, nets: nets, cfg: cfg}
}

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// obj is an object of schema s with defaults filled in and set on top.
func obj(s *resource.Schema, set map[string]cty.Value) cty.Value {
	attrs := map[string]cty.Value{}
	for name, at := range s.ImpliedType().AttributeTypes() {
		attrs[name] = cty.NullVal(at)
	}
	for name, a := range s.Attributes {
		if a.Default != cty.NilVal {
			attrs[name] = a.Default
		}
	}
	for k, v := range set {
		attrs[k] = v
	}
	return cty.ObjectVal(attrs)
}

func strs(ss ...string) cty.Value {
	if len(ss) == 0 {
		return cty.NullVal(cty.List(cty.String))
	}
	vals := make([]cty.Value, len(ss))
	for i, s := range ss {
		vals[i] = cty.StringVal(s)
	}
	return cty.ListVal(vals)
}

func mounts(ms ...map[string]cty.Value) cty.Value {
	vals := make([]cty.Value, len(ms))
	for i, m := range ms {
		vals[i] = obj(resource.ContainerSchema.Blocks["mount"].Schema, m)
	}
	return cty.ListVal(vals)
}

func networks(ns ...map[string]cty.Value) cty.Value {
	vals := make([]cty.Value, len(ns))
	for i, n := range ns {
		vals[i] = obj(resource.ContainerSchema.Blocks["network"].Schema, n)
	}
	return cty.ListVal(vals)
}

func resources(set map[string]cty.Value) cty.Value {
	return obj(resource.ContainerSchema.Blocks["resources"].Schema, set)
}

// container is the value of a container named name running command.
func container(name string, command []string, set map[string]cty.Value) cty.Value {
	all := map[string]cty.Value{
		"name":    cty.StringVal(name),
		"image":   cty.StringVal(testImage),
		"command": strs(command...),
		// Most test commands ignore SIGTERM as PID 1: keep cleanup quick.
		"stop_timeout": cty.StringVal("100ms"),
	}
	for k, v := range set {
		all[k] = v
	}
	return obj(resource.ContainerSchema, all)
}

// create creates the container and deletes it when the test ends.
func (e *env) create(t testing.TB, v cty.Value) (resource.Addr, cty.Value) {
	t.Helper()
	addr := resource.Addr{Kind: resource.KindContainer, Name: v.GetAttr("name").AsString()}
	got, err := e.d.Create(context.Background(), addr, v)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		if err := e.d.Delete(context.Background(), addr, got); err != nil {
			t.Errorf("cleanup delete: %v", err)
		}
	})
	return addr, got
}

func (e *env) observe(t testing.TB, addr resource.Addr, v cty.Value) resource.Observation {
	t.Helper()
	obs, err := e.d.Observe(context.Background(), addr, v)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	return obs
}

// waitExit waits until the container's process ended and returns the
// observation.
func (e *env) waitExit(t testing.TB, addr resource.Addr, v cty.Value) resource.Observation {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		obs := e.observe(t, addr, v)
		if obs.Health != resource.Healthy {
			return obs
		}
		if time.Now().After(deadline) {
			t.Fatal("container still running after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) stdout(t testing.TB, v cty.Value) string {
	t.Helper()
	return e.output(t, v.GetAttr("id").AsString(), "stdout")
}

// output is what the container wrote on one stream, from its log.
func (e *env) output(t testing.TB, id, stream string) string {
	t.Helper()
	var b strings.Builder
	err := logfile.ReadAll(e.d.LogPath(id), func(en logfile.Entry) error {
		if en.Stream == stream {
			b.WriteString(en.Log)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestHTTPServerStaysUp(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	addr, v := e.create(t, container(uniqueName("httpd"), []string{"httpd", "-f", "-p", fmt.Sprint(port), "-h", "/www"}, map[string]cty.Value{
		"network": networks(map[string]cty.Value{"name": cty.StringVal("host")}),
	}))
	if id := v.GetAttr("id").AsString(); id != addr.Name {
		t.Errorf("id = %q, want the name %q", id, addr.Name)
	}
	var body string
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("httpd never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body != "hello from busybox\n" {
		t.Errorf("body = %q", body)
	}
	if obs := e.observe(t, addr, v); obs.Health != resource.Healthy {
		t.Errorf("observe = %+v, want healthy", obs)
	}
	// Create again with the same input changes nothing.
	again, err := e.d.Create(context.Background(), addr, container(addr.Name, []string{"httpd", "-f", "-p", fmt.Sprint(port), "-h", "/www"}, map[string]cty.Value{
		"network": networks(map[string]cty.Value{"name": cty.StringVal("host")}),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !again.RawEquals(v) {
		t.Errorf("second create returned %#v, want %#v", again, v)
	}
}

func TestExitedContainerIsStoppedAndUpdateStartsIt(t *testing.T) {
	e := newEnv(t)
	addr, v := e.create(t, container(uniqueName("exit"), []string{"sh", "-c", "echo hi; echo oops >&2; exit 3"}, nil))
	obs := e.waitExit(t, addr, v)
	if obs.Health != resource.Stopped || !strings.Contains(obs.Reason, "status 3") {
		t.Errorf("observe = %+v, want stopped with status 3", obs)
	}
	defer func() {
		// An update of a stopped container starts it again where it was.
		if _, err := e.d.Update(context.Background(), addr, v, v); err != nil {
			t.Fatal(err)
		}
		waitOutput(t, e, addr.Name, "hi\nhi\n")
	}()
	if out := e.stdout(t, v); out != "hi\n" {
		t.Errorf("stdout = %q", out)
	}
	if data := e.output(t, addr.Name, "stderr"); data != "oops\n" {
		t.Errorf("stderr = %q", data)
	}
}

func TestProcessSettings(t *testing.T) {
	e := newEnv(t)
	addr, v := e.create(t, container(uniqueName("proc"), []string{"sh", "-c", "id -u; id -g; pwd; hostname; cat /etc/hostname; echo $FOO $HOSTNAME; ulimit -n"}, map[string]cty.Value{
		"user":        cty.StringVal("nobody"),
		"working_dir": cty.StringVal("/work/dir"),
		"hostname":    cty.StringVal("box1"),
		"env":         cty.MapVal(map[string]cty.Value{"FOO": cty.StringVal("bar")}),
	}))
	e.waitExit(t, addr, v)
	want := fmt.Sprintf("65534\n65534\n/work/dir\nbox1\nbox1\nbar box1\n%d\n", nofileLimit())
	if out := e.stdout(t, v); out != want {
		t.Errorf("stdout = %q, want %q; stderr: %s", out, want, e.output(t, addr.Name, "stderr"))
	}
}

func TestEntrypointAndCapabilities(t *testing.T) {
	e := newEnv(t)
	// The entrypoint replaces the image's CMD ("sh"); the capability
	// bounding set shows in /proc/self/status.
	addr, v := e.create(t, container(uniqueName("caps"), nil, map[string]cty.Value{
		"entrypoint": strs("sh", "-c", "grep CapBnd /proc/self/status"),
		"cap_drop":   strs("ALL"),
		"cap_add":    strs("NET_ADMIN"),
	}))
	e.waitExit(t, addr, v)
	// CAP_NET_ADMIN is bit 12.
	if out := e.stdout(t, v); !strings.Contains(out, "0000000000001000") {
		t.Errorf("stdout = %q, want only CAP_NET_ADMIN", out)
	}
}

// cgroupFile reads a file of the container's memory cgroup: v1 on cgroup
// v1, v2 on the unified hierarchy.
func cgroupFile(t *testing.T, e *env, id string, v1, v2 string) string {
	t.Helper()
	c, err := libcontainer.Load(e.d.stateRoot(), id)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(st.CgroupPaths["memory"], v1)
	if cgroups.IsCgroup2UnifiedMode() {
		path = filepath.Join(st.CgroupPaths[""], v2)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func TestResourcesUpdateInPlace(t *testing.T) {
	e := newEnv(t)
	name := uniqueName("mem")
	cmd := []string{"sleep", "1000"}
	addr, v := e.create(t, container(name, cmd, map[string]cty.Value{
		"resources": resources(map[string]cty.Value{"memory": cty.StringVal("64M"), "pids": cty.NumberIntVal(50)}),
	}))
	if got := cgroupFile(t, e, name, "memory.limit_in_bytes", "memory.max"); got != "67108864" {
		t.Fatalf("memory limit = %s, want 67108864", got)
	}
	desired := container(name, cmd, map[string]cty.Value{
		"resources": resources(map[string]cty.Value{"memory": cty.StringVal("128M"), "cpus": cty.NumberFloatVal(0.5)}),
		"labels":    cty.MapVal(map[string]cty.Value{"tier": cty.StringVal("db")}),
	})
	got, err := e.d.Update(context.Background(), addr, v, desired)
	if err != nil {
		t.Fatal(err)
	}
	if !got.GetAttr("id").RawEquals(v.GetAttr("id")) {
		t.Errorf("update lost the id: %#v", got)
	}
	if got := cgroupFile(t, e, name, "memory.limit_in_bytes", "memory.max"); got != "134217728" {
		t.Errorf("memory limit after update = %s, want 134217728", got)
	}
	m, err := readMeta(e.d.dir(name))
	if err != nil {
		t.Fatal(err)
	}
	if m.Labels["tier"] != "db" {
		t.Errorf("labels not recorded: %+v", m.Labels)
	}
	if obs := e.observe(t, addr, got); obs.Health != resource.Healthy {
		t.Errorf("observe after update = %+v", obs)
	}
}

func TestVolumeFilledOnFirstMountOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	volName := uniqueName("vol")
	volAddr := resource.Addr{Kind: resource.KindVolume, Name: volName}
	vv, err := e.vols.Create(ctx, volAddr, obj(resource.VolumeSchema, map[string]cty.Value{"name": cty.StringVal(volName)}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.vols.Delete(ctx, volAddr, vv) })
	dir := vv.GetAttr("path").AsString()
	mount := mounts(map[string]cty.Value{"volume": cty.StringVal(volName), "target": cty.StringVal("/www")})

	// The first container sees the image's /www, now in the volume, and
	// writes to it.
	addr, v := e.create(t, container(uniqueName("fill"), []string{"sh", "-c", "cat /www/index.html; echo mine > /www/mine"}, map[string]cty.Value{"mount": mount}))
	e.waitExit(t, addr, v)
	if out := e.stdout(t, v); out != "hello from busybox\n" {
		t.Errorf("first container read %q", out)
	}
	if err := e.d.Delete(ctx, addr, v); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "index.html")); err != nil {
		t.Fatal(err)
	}
	// The volume holds data now, so the image's content is not copied
	// again.
	addr, v = e.create(t, container(uniqueName("fill"), []string{"ls", "/www"}, map[string]cty.Value{"mount": mount}))
	e.waitExit(t, addr, v)
	if out := e.stdout(t, v); out != "mine\n" {
		t.Errorf("second container lists %q, want only mine", out)
	}
}

func TestReadOnlyRoot(t *testing.T) {
	e := newEnv(t)
	bind := t.TempDir()
	if err := os.WriteFile(filepath.Join(bind, "f"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, v := e.create(t, container(uniqueName("ro"), []string{"sh", "-c",
		"touch /x 2>/dev/null && echo root-writable || echo root-ro; " +
			"touch /scratch/y && echo tmpfs-ok; " +
			"cat /host/f; touch /host/g 2>/dev/null && echo bind-writable || echo bind-ro"}, map[string]cty.Value{
		"read_only": cty.True,
		"mount": mounts(
			map[string]cty.Value{"tmpfs": cty.True, "tmpfs_size": cty.StringVal("8M"), "target": cty.StringVal("/scratch")},
			map[string]cty.Value{"bind": cty.StringVal(bind), "target": cty.StringVal("/host"), "read_only": cty.True},
		),
	}))
	e.waitExit(t, addr, v)
	want := "root-ro\ntmpfs-ok\nfrom host\nbind-ro\n"
	if out := e.stdout(t, v); out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// sleep as PID 1 has no SIGTERM handler, so the kernel drops SIGTERM.
	addr, v := e.create(t, container(uniqueName("stop"), []string{"sleep", "1000"}, map[string]cty.Value{
		"stop_timeout": cty.StringVal("1s"),
	}))
	start := time.Now()
	if err := e.d.Delete(ctx, addr, v); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second || took > 5*time.Second {
		t.Errorf("delete took %v, want the 1s stop timeout and a kill", took)
	}
	if err := e.d.Delete(ctx, addr, v); err != nil {
		t.Errorf("second delete: %v", err)
	}
	if obs := e.observe(t, addr, v); obs.Health != resource.Missing {
		t.Errorf("observe after delete = %+v", obs)
	}
	assertNoTraces(t, e, addr.Name)
}

func TestStopSignalEndsGracefully(t *testing.T) {
	e := newEnv(t)
	addr, v := e.create(t, container(uniqueName("trap"), []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"}, nil))
	// Let the shell install its trap.
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := e.d.Delete(context.Background(), addr, v); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("delete took %v; SIGTERM should have ended it", took)
	}
}

func TestFailedCreateLeavesNothing(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]cty.Value
		want string
	}{
		{"unknown image", map[string]cty.Value{"image": cty.StringVal("nope:1")}, "not found"},
		{"missing bind source", map[string]cty.Value{
			"network": networks(map[string]cty.Value{"name": cty.StringVal("n1")}),
			"mount":   mounts(map[string]cty.Value{"bind": cty.StringVal("/nonexistent/berth"), "target": cty.StringVal("/x")}),
		}, "/nonexistent/berth"},
		{"unknown network", map[string]cty.Value{"network": networks(map[string]cty.Value{"name": cty.StringVal("nonet")})}, "nonet"},
		{"no such user", map[string]cty.Value{
			"network": networks(map[string]cty.Value{"name": cty.StringVal("n1")}),
			"user":    cty.StringVal("alice"),
		}, "alice"},
		{"no such command", map[string]cty.Value{
			"network": networks(map[string]cty.Value{"name": cty.StringVal("n1")}),
			"command": strs("/bin/nonexistent"),
		}, "nonexistent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			name := uniqueName("fail")
			addr := resource.Addr{Kind: resource.KindContainer, Name: name}
			_, err := e.d.Create(context.Background(), addr, container(name, []string{"true"}, tt.set))
			if err == nil {
				t.Fatal("create succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			assertNoTraces(t, e, name)
			if len(e.nets.attached) != 0 {
				t.Errorf("attachments left: %v", e.nets.attached)
			}
		})
	}
}

// assertNoTraces checks that container id left no mount, namespace,
// directory or cgroup behind.
func assertNoTraces(t *testing.T, e *env, id string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, e.cfg.StateDir) || strings.Contains(line, e.cfg.RunDir) {
			t.Errorf("mount left: %s", line)
		}
	}
	for _, p := range []string{e.d.dir(id), e.d.netnsPath(id), filepath.Join(e.d.stateRoot(), id)} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
	for _, p := range []string{filepath.Join(cgroupRoot, "memory", e.cfg.CgroupParent, id), filepath.Join(cgroupRoot, e.cfg.CgroupParent, id)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("cgroup %s left behind", p)
		}
	}
}

func TestNamesResolveOnSharedNetwork(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nameA, nameB, nameC := uniqueName("a"), uniqueName("b"), uniqueName("c")
	addrA, a := e.create(t, container(nameA, []string{"sleep", "1000"}, map[string]cty.Value{
		"network": networks(map[string]cty.Value{"name": cty.StringVal("n1")}),
	}))
	addrB, b := e.create(t, container(nameB, []string{"sleep", "1000"}, map[string]cty.Value{
		"network": networks(
			map[string]cty.Value{"name": cty.StringVal("n2")},
			map[string]cty.Value{"name": cty.StringVal("n1"), "aliases": strs("db")},
		),
	}))
	// C is on no network of A's and must not show up there.
	e.create(t, container(nameC, []string{"sleep", "1000"}, map[string]cty.Value{
		"network": networks(map[string]cty.Value{"name": cty.StringVal("n2")}),
	}))
	ipB := b.GetAttr("ip_addresses").Index(cty.StringVal("n1")).AsString()
	if b.GetAttr("ip_address").AsString() != b.GetAttr("ip_addresses").Index(cty.StringVal("n2")).AsString() {
		t.Errorf("ip_address is not the first network's: %#v", b)
	}
	if a.GetAttr("ip_address").AsString() == "" {
		t.Error("A has no address")
	}

	hostsInA := func() string {
		c, err := libcontainer.Load(e.d.stateRoot(), nameA)
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.State()
		if err != nil {
			t.Fatal(err)
		}
		// What the running container sees through its bind mount.
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/hosts", st.InitProcessPid))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	hosts := hostsInA()
	if want := ipB + "\t" + nameB + " db\n"; !strings.Contains(hosts, want) {
		t.Errorf("A's hosts lacks %q:\n%s", want, hosts)
	}
	if strings.Contains(hosts, nameC) {
		t.Errorf("A's hosts has C, which shares no network with it:\n%s", hosts)
	}
	if err := e.d.Delete(ctx, addrB, b); err != nil {
		t.Fatal(err)
	}
	if hosts := hostsInA(); strings.Contains(hosts, nameB) {
		t.Errorf("A's hosts still has deleted B:\n%s", hosts)
	}
	if _, ok := e.nets.attached[nameB+"/n1"]; ok {
		t.Error("B still attached to n1")
	}
	if obs := e.observe(t, addrA, a); obs.Health != resource.Healthy {
		t.Errorf("A = %+v", obs)
	}
	// A joined the namespace berth made for it.
	var st1, st2 os.FileInfo
	c, _ := libcontainer.Load(e.d.stateRoot(), nameA)
	s, _ := c.State()
	st1, _ = os.Stat(fmt.Sprintf("/proc/%d/ns/net", s.InitProcessPid))
	st2, _ = os.Stat(e.d.netnsPath(nameA))
	if st1 == nil || st2 == nil || !os.SameFile(st1, st2) {
		t.Error("A does not run in its persistent network namespace")
	}
}

// BenchmarkCreateDelete measures creating and starting a container that
// runs true, and deleting it.
func BenchmarkCreateDelete(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	var created time.Duration
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("%s-%d", uniqueName("bench"), i)
		addr := resource.Addr{Kind: resource.KindContainer, Name: name}
		start := time.Now()
		v, err := e.d.Create(ctx, addr, container(name, []string{"true"}, nil))
		if err != nil {
			b.Fatal(err)
		}
		created += time.Since(start)
		if err := e.d.Delete(ctx, addr, v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(created.Microseconds())/float64(b.N)/1000, "ms-create+start/op")
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}
