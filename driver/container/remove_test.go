package container

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
)

func TestRemoveRefusesRunningUnlessForced(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	addr, _ := e.create(t, container(uniqueName("rm"), []string{"sleep", "1000"}, nil))
	name := addr.Name
	if _, err := e.d.Remove(ctx, name, false); !errors.Is(err, resource.ErrConflict) {
		t.Fatalf("rm of a running container = %v, want a conflict", err)
	}
	in, err := e.d.Remove(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != name || in.Status != StatusRunning {
		t.Errorf("Remove returned %+v, want what was removed (running)", in)
	}
	if _, err := e.d.Inspect(ctx, name); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("inspect after rm = %v, want not found", err)
	}
	if _, err := os.Stat(e.d.dir(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the container's directory is left: %v", err)
	}
	if _, err := e.d.Remove(ctx, name, true); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("second rm = %v, want not found", err)
	}
	// The declared delete of what rm removed succeeds (the cleanup the
	// test registered runs it).
}

func TestRemoveStopped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	addr, _ := e.create(t, container(uniqueName("rm"), []string{"true"}, nil))
	exited, err := e.d.Exited(addr.Name)
	if err != nil {
		t.Fatal(err)
	}
	<-exited
	if _, err := e.d.Remove(ctx, addr.Name, false); err != nil {
		t.Fatalf("rm of an exited container: %v", err)
	}
}
