package network

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// TestDeleteRefusesUnreadableRecord: a network whose record exists but
// cannot be read may be anyone's, so Delete leaves it and says which file
// to inspect.
func TestDeleteRefusesUnreadableRecord(t *testing.T) {
	e := newEnv(t)
	name := uniq("damaged")
	v := e.create(name, map[string]cty.Value{"driver": cty.StringVal("none")})
	path := e.d.recordPath(name)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"name": "`+name), 0o644); err != nil {
		t.Fatal(err)
	}
	err = e.d.Delete(ownedBy("p", "n"), netAddr("n"), v)
	if !errors.Is(err, resource.ErrConflict) || !strings.Contains(err.Error(), "its record "+path+" cannot be read") ||
		!strings.Contains(err.Error(), "remove the network by hand") {
		t.Errorf("delete = %v, want refused naming %s", err, path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the refused delete removed the record: %v", err)
	}
	// Repaired, it is deleted as usual at cleanup.
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateRecordsOwner: a network made without a recorded owner (by an
// older berth) is recorded as its updater's, so another project is then
// told whose it is.
func TestUpdateRecordsOwner(t *testing.T) {
	e := newEnv(t)
	name := uniq("legacy")
	v := e.create(name, map[string]cty.Value{"driver": cty.StringVal("none")})
	if rec, err := e.d.readRecord(name); err != nil || rec.Owner != "" {
		t.Fatalf("record of a network made without an owner = %+v, %v", rec, err)
	}
	desired := resource.WithAttrs(v, map[string]cty.Value{"labels": resource.StringMapVal(map[string]string{"a": "1"})})
	if _, err := e.d.Update(ownedBy("p", "front"), netAddr("front"), v, desired); err != nil {
		t.Fatal(err)
	}
	if rec, err := e.d.readRecord(name); err != nil || rec.Owner != "p/network.front" || rec.Labels["a"] != "1" {
		t.Errorf("record after the update = %+v, %v; want owned by p/network.front", rec, err)
	}
	_, err := e.d.Create(ownedBy("xproj", "n"), netAddr("n"), netVal(name, map[string]cty.Value{"driver": cty.StringVal("none")}))
	if !errors.Is(err, resource.ErrAlreadyExists) || !strings.Contains(err.Error(), "belongs to p/network.front") {
		t.Errorf("create by another project = %v, want refused naming p/network.front", err)
	}
}
