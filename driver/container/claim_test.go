package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// TestConcurrentCreateOneOwner: two projects creating the same container
// name at the same moment are serialised: one makes it, the other is told
// whose it is, and the loser's create leaves the winner's container
// running and recorded as the winner's.
func TestConcurrentCreateOneOwner(t *testing.T) {
	e := newEnv(t)
	addr := resource.Addr{Kind: resource.KindContainer, Name: "web"}
	for range 3 {
		name := uniqueName("race")
		v := container(name, []string{"sleep", "1000"}, nil)
		projects := []string{"p0", "p1"}
		got := make([]cty.Value, len(projects))
		errs := make([]error, len(projects))
		var start, done sync.WaitGroup
		start.Add(1)
		for i, p := range projects {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				got[i], errs[i] = e.d.Create(ownedBy(p, "web"), addr, v)
			}()
		}
		start.Done()
		done.Wait()

		winner := -1
		for i, err := range errs {
			if err == nil {
				winner = i
				t.Cleanup(func() {
					if err := e.d.Delete(ownedBy(projects[i], "web"), addr, got[i]); err != nil {
						t.Errorf("cleanup delete: %v", err)
					}
				})
			}
		}
		if winner < 0 || errs[1-winner] == nil {
			t.Fatalf("creates = %v; want exactly one to succeed", errs)
		}
		owner := projects[winner] + "/container.web"
		if err := errs[1-winner]; !errors.Is(err, resource.ErrAlreadyExists) || !strings.Contains(err.Error(), "belongs to "+owner) {
			t.Errorf("the losing create = %v, want refused naming %s", err, owner)
		}
		if obs := e.observeCtx(t, ownedBy(projects[winner], "web"), addr, got[winner]); obs.Health != resource.Healthy {
			t.Errorf("the winner's container after the race: %+v", obs)
		}
		if m, err := readMeta(e.d.dir(name)); err != nil || m.Owner != owner || !m.Started {
			t.Errorf("record after the race = %+v, %v; want started and owned by %s", m, err, owner)
		}
	}
}

// TestDeleteRefusesUnreadableRecord: a container whose record exists but
// cannot be read may be anyone's, so Delete leaves it and says which file
// to inspect.
func TestDeleteRefusesUnreadableRecord(t *testing.T) {
	e := newEnv(t)
	name := uniqueName("damaged")
	dir := e.d.dir(name)
	if err := os.MkdirAll(filepath.Join(dir, "upper"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "meta.json")
	if err := os.WriteFile(path, []byte(`{"owner": "someone/contai`), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := resource.Addr{Kind: resource.KindContainer, Name: "web"}
	err := e.d.Delete(ownedBy("p", "web"), addr, container(name, []string{"sleep", "1"}, nil))
	if !errors.Is(err, resource.ErrConflict) || !strings.Contains(err.Error(), "its owner record "+path+" cannot be read") ||
		!strings.Contains(err.Error(), "remove the container by hand") {
		t.Errorf("delete = %v, want refused naming %s", err, path)
	}
	if _, err := os.Stat(filepath.Join(dir, "upper")); err != nil {
		t.Errorf("the refused delete removed the container's files: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the refused delete removed the record: %v", err)
	}
}

// TestUpdateRecordsOwner: a container made without a recorded owner (by an
// older berth) is recorded as its updater's, so another project is then
// told whose it is; once deleted, nothing of its name's lock is left.
func TestUpdateRecordsOwner(t *testing.T) {
	e := newEnv(t)
	name := uniqueName("legacy")
	addr := resource.Addr{Kind: resource.KindContainer, Name: "web"}
	v := container(name, []string{"sleep", "1000"}, nil)
	got, err := e.d.Create(context.Background(), addr, v)
	if err != nil {
		t.Fatal(err)
	}
	p := ownedBy("p", "web")
	t.Cleanup(func() {
		if err := e.d.Delete(p, addr, got); err != nil {
			t.Errorf("cleanup delete: %v", err)
		}
	})
	if m, err := readMeta(e.d.dir(name)); err != nil || m.Owner != "" {
		t.Fatalf("record of a container made without an owner = %+v, %v", m, err)
	}
	desired := resource.WithAttrs(got, map[string]cty.Value{"labels": resource.StringMapVal(map[string]string{"a": "1"})})
	if got, err = e.d.Update(p, addr, got, desired); err != nil {
		t.Fatal(err)
	}
	if m, err := readMeta(e.d.dir(name)); err != nil || m.Owner != "p/container.web" {
		t.Errorf("record after the update = %+v, %v; want owned by p/container.web", m, err)
	}
	if _, err := e.d.Create(ownedBy("xproj", "z"), addr, v); !errors.Is(err, resource.ErrAlreadyExists) ||
		!strings.Contains(err.Error(), "belongs to p/container.web") {
		t.Errorf("create by another project = %v, want refused naming p/container.web", err)
	}
	if err := e.d.Delete(p, addr, got); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.StateDir, locksDir, name+".lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock file of a deleted container's name is left: %v", err)
	}
}
