package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/seed-e88ffcd2/berth/resource"
)

// recordVersion is the format of the records this build writes.
const recordVersion = 1

// record is the on-disk form of one object, format 1:
//
//	{"version":1, "addr":"container.web", "deps":["image.app"],
//	 "value":{"value":{...},"type":[...]}, "updated":"2026-11-27T21:00:00Z"}
//
// The value is cty JSON of cty.DynamicPseudoType, which carries the value's
// type with it, so a record decodes without knowing the schema it was
// written under; a later schema change is then the planner's business, not
// a decoding failure.
type record struct {
	Version int             `json:"version"`
	Addr    resource.Addr   `json:"addr"`
	Deps    []resource.Addr `json:"deps"`
	Value   json.RawMessage `json:"value"`
	Updated time.Time       `json:"updated"`
}

// upgrades[v] rewrites a record of format v, as raw JSON fields, into
// format v+1. Reading a record runs every step from its version to
// recordVersion, so each step only ever knows two adjacent formats.
var upgrades = []func(map[string]json.RawMessage) error{
	0: upgradeV0,
}

// upgradeV0 reads berth's pre-release format: no "version" field, and the
// value encoded with its own type, with the type beside it in "type".
func upgradeV0(raw map[string]json.RawMessage) error {
	val, typ := raw["value"], raw["type"]
	if val == nil || typ == nil {
		return errors.New("format 0 record needs both value and type")
	}
	var b bytes.Buffer
	b.WriteString(`{"value":`)
	b.Write(val)
	b.WriteString(`,"type":`)
	b.Write(typ)
	b.WriteString(`}`)
	raw["value"] = b.Bytes()
	delete(raw, "type")
	return nil
}

func newRecord(obj *resource.Object, updated time.Time) (*record, error) {
	if obj == nil {
		return nil, errors.New("nil object")
	}
	if !obj.Value.IsWhollyKnown() {
		return nil, fmt.Errorf("record %s: value is not wholly known; only applied objects are recorded", obj.Addr)
	}
	val, err := ctyjson.Marshal(obj.Value, cty.DynamicPseudoType)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", obj.Addr, err)
	}
	// Dependencies are a set; sorting them keeps equal sets byte-identical.
	deps := slices.Clone(obj.Deps)
	slices.SortFunc(deps, compareAddr)
	deps = slices.Compact(deps)
	if deps == nil {
		deps = []resource.Addr{}
	}
	return &record{
		Version: recordVersion,
		Addr:    obj.Addr,
		Deps:    deps,
		Value:   val,
		Updated: updated.UTC(),
	}, nil
}

// decodeRecord reads a record of any format up to recordVersion.
func decodeRecord(b []byte) (*record, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	version := 0 // format 0 had no version field
	if v, ok := raw["version"]; ok {
		if err := json.Unmarshal(v, &version); err != nil {
			return nil, fmt.Errorf("unreadable version %s", v)
		}
	}
	if version > recordVersion {
		return nil, newerFormatError(version)
	}
	if version < 0 {
		return nil, fmt.Errorf("unknown format %d", version)
	}
	if version < recordVersion {
		for v := version; v < recordVersion; v++ {
			if err := upgrades[v](raw); err != nil {
				return nil, fmt.Errorf("upgrade from format %d: %w", v, err)
			}
		}
		raw["version"] = json.RawMessage(strconv.Itoa(recordVersion))
		var err error
		if b, err = json.Marshal(raw); err != nil {
			return nil, err
		}
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

func (r *record) encode() ([]byte, error) { return json.Marshal(r) }

// object decodes the record's value.
func (r *record) object() (*resource.Object, error) {
	v, err := ctyjson.Unmarshal(r.Value, cty.DynamicPseudoType)
	if err != nil {
		return nil, fmt.Errorf("record %s: value: %w", r.Addr, err)
	}
	obj := &resource.Object{Addr: r.Addr, Value: v}
	if len(r.Deps) > 0 {
		obj.Deps = r.Deps
	}
	return obj, nil
}

// sameAs reports whether the stored record old says what r says, apart from
// when it was written. Both sides go through the same encoder at the current
// format, so an old-format record that says the same is not rewritten.
func (r *record) sameAs(old []byte) (bool, error) {
	prev, err := decodeRecord(old)
	if err != nil {
		return false, err
	}
	// Normalise through cty: the stored value may predate this encoder.
	prevObj, err := prev.object()
	if err != nil {
		return false, err
	}
	prevRec, err := newRecord(&resource.Object{Addr: prev.Addr, Value: prevObj.Value, Deps: prev.Deps}, prev.Updated)
	if err != nil {
		return false, err
	}
	a, err := prevRec.encode()
	if err != nil {
		return false, err
	}
	cur := *r
	cur.Updated = prev.Updated
	b, err := cur.encode()
	if err != nil {
		return false, err
	}
	return bytes.Equal(a, b), nil
}

// compareAddr orders addresses as resource.Addr.Less does, for slices.SortFunc.
func compareAddr(a, b resource.Addr) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}
