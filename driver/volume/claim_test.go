package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// TestConcurrentCreateOneOwner: two projects creating the same volume name
// at the same moment are serialised: one makes it, the other is told whose
// it is, and the metadata names the one that made it.
func TestConcurrentCreateOneOwner(t *testing.T) {
	d := newDriver(t)
	projects := []string{"p0", "p1"}
	for i := range 200 {
		name := fmt.Sprintf("v%d", i)
		errs := make([]error, len(projects))
		var start, done sync.WaitGroup
		start.Add(1)
		for j, p := range projects {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				_, errs[j] = d.Create(ownedBy(p), addr, volumeVal(name, nil))
			}()
		}
		start.Done()
		done.Wait()
		winner := -1
		for j, err := range errs {
			if err == nil {
				winner = j
			}
		}
		if winner < 0 || errs[1-winner] == nil {
			t.Fatalf("volume %s: creates = %v; want exactly one to succeed", name, errs)
		}
		owner := projects[winner] + "/volume.data"
		if err := errs[1-winner]; !errors.Is(err, resource.ErrAlreadyExists) || !strings.Contains(err.Error(), "belongs to "+owner) {
			t.Fatalf("volume %s: the losing create = %v, want refused naming %s", name, err, owner)
		}
		if got, _, err := d.owner(name); err != nil || got != owner {
			t.Fatalf("volume %s: recorded owner = %q, %v; want %s", name, got, err, owner)
		}
	}
}

// TestCrashDuringCreate: a create that stops between claiming the name and
// making the directory leaves the claim, which the owner's next plan
// accepts and its create completes, and which other projects are refused.
// A directory without metadata (made by hand, or by an older berth) still
// has no recorded owner.
func TestCrashDuringCreate(t *testing.T) {
	d := newDriver(t)
	p := ownedBy("p")
	v := volumeVal("data", nil)
	null := cty.NullVal(v.Type())
	crash := func() {
		defer func() { _ = recover() }()
		testHookClaimed = func() { panic("crash") }
		defer func() { testHookClaimed = nil }()
		_, _ = d.Create(p, addr, v)
	}
	crash()
	if owner, _, err := d.owner("data"); err != nil || owner != "p/volume.data" {
		t.Errorf("owner after the crash = %q, %v; want p/volume.data", owner, err)
	}
	if _, err := d.Preview(p, addr, null, v); err != nil {
		t.Errorf("the owner's next plan: %v", err)
	}
	if _, err := d.Preview(ownedBy("xproj"), addr, null, v); !errors.Is(err, resource.ErrAlreadyExists) ||
		!strings.Contains(err.Error(), "belongs to p/volume.data") {
		t.Errorf("another project's plan = %v, want refused naming p/volume.data", err)
	}
	got, err := d.Create(p, addr, v)
	if err != nil {
		t.Fatalf("the owner's next create: %v", err)
	}
	if fi, err := os.Stat(got.GetAttr("path").AsString()); err != nil || !fi.IsDir() {
		t.Errorf("the owner's next create made no directory: %v", err)
	}

	if err := os.Mkdir(d.dir("byhand"), 0o755); err != nil {
		t.Fatal(err)
	}
	byHand := volumeVal("byhand", nil)
	if _, err := d.Preview(p, addr, null, byHand); !errors.Is(err, resource.ErrAlreadyExists) ||
		!strings.Contains(err.Error(), resource.Unrecorded) {
		t.Errorf("plan of a directory without metadata = %v, want refused as %q", err, resource.Unrecorded)
	}
}

// TestDeleteRefusesUnreadableMetadata: a volume whose metadata exists but
// cannot be read may be anyone's, so Delete leaves it and its data and
// says which file to inspect.
func TestDeleteRefusesUnreadableMetadata(t *testing.T) {
	d := newDriver(t)
	v, err := d.Create(ownedBy("p"), addr, volumeVal("data", nil))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(v.GetAttr("path").AsString(), "f")
	if err := os.WriteFile(data, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := d.metaPath("data")
	if err := os.WriteFile(path, []byte(`{"owner": "p/vol`), 0o644); err != nil {
		t.Fatal(err)
	}
	err = d.Delete(ownedBy("p"), addr, v)
	if !errors.Is(err, resource.ErrConflict) || !strings.Contains(err.Error(), "its owner record "+path+" cannot be read") ||
		!strings.Contains(err.Error(), "remove the volume by hand") {
		t.Errorf("delete = %v, want refused naming %s", err, path)
	}
	if _, err := os.Stat(data); err != nil {
		t.Errorf("the refused delete removed the data: %v", err)
	}
}

// TestLockFileGoesWithVolume: the lock file of a volume name is removed
// with the volume, so a host where everything was destroyed keeps none.
func TestLockFileGoesWithVolume(t *testing.T) {
	d := newDriver(t)
	v, err := d.Create(ownedBy("p"), addr, volumeVal("data", nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ownedBy("p"), addr, v); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(d.cfg.Root, metaDir, locksDir))
	if err != nil || len(entries) != 0 {
		t.Errorf("lock files after the delete: %v, %v", entries, err)
	}
}
