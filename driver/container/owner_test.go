package container

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

func ownedBy(project, name string) context.Context {
	return resource.WithOwner(context.Background(), resource.Owner{
		Project: project, Addr: resource.Addr{Kind: resource.KindContainer, Name: name},
	})
}

// initPID is the host PID of a container's init, which changes when the
// container is made again.
func (e *env) initPID(t *testing.T, id string) int {
	t.Helper()
	c, err := libcontainer.Load(e.d.stateRoot(), id)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	return st.InitProcessPid
}

// TestOwnership: a container name another project's container holds is
// refused by Preview and Create with that owner named, its Observe says
// whose it is and its Delete leaves it running; the owner's own create
// adopts it when made from the same value and makes it again otherwise.
func TestOwnership(t *testing.T) {
	e := newEnv(t)
	name := uniqueName("own")
	addr := resource.Addr{Kind: resource.KindContainer, Name: "web"}
	hello, other := ownedBy("hello", "web"), ownedBy("xproj", "z")
	v := container(name, []string{"sleep", "1000"}, nil)
	got, err := e.d.Create(hello, addr, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.d.Delete(hello, addr, got); err != nil {
			t.Errorf("cleanup delete: %v", err)
		}
	})
	pid := e.initPID(t, name)

	want := `container "` + name + `" already exists on this host and belongs to hello/container.web; choose another name, or destroy it there`
	if _, err := e.d.Preview(other, addr, cty.NullVal(v.Type()), v); !errors.Is(err, resource.ErrAlreadyExists) || err.Error() != want {
		t.Errorf("preview by another project = %v, want %q", err, want)
	}
	if _, err := e.d.Create(other, addr, v); !errors.Is(err, resource.ErrAlreadyExists) || !strings.Contains(err.Error(), want) {
		t.Errorf("create by another project = %v, want %q", err, want)
	}
	if obs := e.observeCtx(t, other, addr, got); obs.Health != resource.Missing || obs.Reason != "container "+name+" now belongs to hello/container.web" {
		t.Errorf("observe by another project = %+v", obs)
	}
	if err := e.d.Delete(other, addr, got); err != nil {
		t.Errorf("delete by another project = %v, want success without touching it", err)
	}
	if obs := e.observeCtx(t, hello, addr, got); obs.Health != resource.Healthy || e.initPID(t, name) != pid {
		t.Fatalf("after another project's delete: %+v, init %d (was %d)", obs, e.initPID(t, name), pid)
	}

	// The owner's record was dropped from its state: planning again is
	// fine, and creating from the same value adopts the container.
	if _, err := e.d.Preview(hello, addr, cty.NullVal(v.Type()), v); err != nil {
		t.Errorf("preview by the owner: %v", err)
	}
	if again, err := e.d.Create(hello, addr, v); err != nil || !again.RawEquals(got) || e.initPID(t, name) != pid {
		t.Fatalf("create by the owner from the same value = %#v, %v; want the same container", again, err)
	}
	// ... and from another value makes it anew.
	changed := container(name, []string{"sleep", "2000"}, nil)
	if got, err = e.d.Create(hello, addr, changed); err != nil {
		t.Fatal(err)
	}
	if e.initPID(t, name) == pid {
		t.Error("create by the owner from a changed value adopted the old container")
	}
	// Create returns once the init is released to exec the command, which
	// it may not have done yet: until then its command line is berth's.
	var args string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if args = readFile("/proc/" + strconv.Itoa(e.initPID(t, name)) + "/cmdline"); strings.Contains(args, "2000") {
			break
		}
	}
	if !strings.Contains(args, "2000") {
		t.Errorf("recreated container runs %q, want sleep 2000", args)
	}
}

func (e *env) observeCtx(t *testing.T, ctx context.Context, addr resource.Addr, v cty.Value) resource.Observation {
	t.Helper()
	obs, err := e.d.Observe(ctx, addr, v)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	return obs
}

// TestRenameMakesNewID: the id follows the desired name, so a renamed
// container is made under its new id and the old one is removed, as the
// planner and applier drive it (Preview, Delete of the old, Create).
func TestRenameMakesNewID(t *testing.T) {
	e := newEnv(t)
	ctx := ownedBy("p", "web")
	addr := resource.Addr{Kind: resource.KindContainer, Name: "web"}
	oldName, newName := uniqueName("old"), uniqueName("new")
	before := container(oldName, []string{"sleep", "1000"}, nil)
	planned, err := e.d.Preview(ctx, addr, cty.NullVal(before.Type()), before)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.d.Create(ctx, addr, planned)
	if err != nil {
		t.Fatal(err)
	}
	after := container(newName, []string{"sleep", "1000"}, map[string]cty.Value{"id": got.GetAttr("id")})
	planned, err = e.d.Preview(ctx, addr, got, after)
	if err != nil {
		t.Fatal(err)
	}
	if id := planned.GetAttr("id"); !id.RawEquals(cty.StringVal(newName)) {
		t.Fatalf("planned id after the rename = %#v, want %q", id, newName)
	}
	if err := e.d.Delete(ctx, addr, got); err != nil {
		t.Fatal(err)
	}
	renamed, err := e.d.Create(ctx, addr, planned)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.d.Delete(ctx, addr, renamed); err != nil {
			t.Errorf("cleanup delete: %v", err)
		}
	})
	if id := renamed.GetAttr("id").AsString(); id != newName {
		t.Errorf("id after the rename = %q, want %q", id, newName)
	}
	if _, err := libcontainer.Load(e.d.stateRoot(), oldName); !errors.Is(err, libcontainer.ErrNotExist) {
		t.Errorf("the old container %s is still there: %v", oldName, err)
	}
	if _, err := os.Stat(e.d.dir(oldName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old container's directory is still there: %v", err)
	}
	if e.observeCtx(t, ctx, addr, renamed).Health != resource.Healthy {
		t.Error("the renamed container is not running")
	}
}

// TestDeleteAfterCancel: a delete whose context is cancelled (a second
// Ctrl-C) still detaches, unmounts and removes everything.
func TestDeleteAfterCancel(t *testing.T) {
	e := newEnv(t)
	name := uniqueName("cancel")
	addr := resource.Addr{Kind: resource.KindContainer, Name: name}
	got, err := e.d.Create(context.Background(), addr, container(name, []string{"sleep", "1000"}, map[string]cty.Value{
		"network": networks(map[string]cty.Value{"name": cty.StringVal("n1")}),
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.d.Delete(ctx, addr, got); err != nil {
		t.Fatalf("delete with a cancelled context: %v", err)
	}
	assertNoTraces(t, e, name)
	if len(e.nets.attached) != 0 {
		t.Errorf("attachments left: %v", e.nets.attached)
	}
}
