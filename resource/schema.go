package resource

import (
	"sort"
	"sync"

	"github.com/zclconf/go-cty/cty"
)

// Update says what a change of an attribute costs.
type Update int

const (
	// Replace: the object is deleted and created again.
	Replace Update = iota
	// InPlace: the driver changes the running object (cgroup limits,
	// restart policy, labels).
	InPlace
)

// Attribute declares one attribute of a kind.
type Attribute struct {
	Type cty.Type
	Doc  string

	// Required attributes must be set; Optional ones may be. Computed
	// attributes are set by the driver; Optional+Computed ones keep the
	// driver's value when the user leaves them unset (a network's subnet).
	Required, Optional, Computed bool

	// Default is filled in by the DSL when the attribute is unset, so an
	// explicit default and an omitted attribute plan the same.
	Default cty.Value

	// Update says whether a change applies in place or replaces.
	Update Update

	// Reason names a replacement caused by this attribute; empty means
	// "<name> changed".
	Reason string

	// Path marks a filesystem path that the DSL resolves against the
	// directory of the file that sets it.
	Path bool

	// Validate checks a known, non-null value. Its error is shown as a
	// diagnostic on the attribute's expression.
	Validate func(cty.Value) error
}

// Nesting says how many of a nested block may appear.
type Nesting int

const (
	// NestingList blocks may repeat; they decode to a list of objects.
	NestingList Nesting = iota
	// NestingSingle blocks appear at most once; they decode to an object,
	// null when absent.
	NestingSingle
)

// Block declares a nested block such as container's mount or port.
type Block struct {
	Nesting Nesting
	Doc     string
	Schema  *Schema
	// Update applies to any change inside the block.
	Update Update
	Reason string
}

// AttrError is a problem with one attribute found by a kind's Check, placed
// by the DSL on the attribute's source range.
type AttrError struct {
	Path cty.Path
	Msg  string
}

// Schema declares the attributes and nested blocks of a kind (or of a
// nested block).
type Schema struct {
	Attributes map[string]*Attribute
	Blocks     map[string]*Block
	// Check validates relations between attributes of a decoded object
	// (exactly one of archive and rootfs). Unknown values must be tolerated.
	Check func(cty.Value) []AttrError

	// Schemas never change once declared, so the implied type is built
	// once: every evaluation and diff asks for it.
	impliedOnce sync.Once
	implied     cty.Type
}

// ImpliedType is the cty object type of a decoded value of this schema.
func (s *Schema) ImpliedType() cty.Type {
	s.impliedOnce.Do(func() { s.implied = s.impliedType() })
	return s.implied
}

func (s *Schema) impliedType() cty.Type {
	attrs := make(map[string]cty.Type, len(s.Attributes)+len(s.Blocks))
	for name, a := range s.Attributes {
		attrs[name] = a.Type
	}
	for name, b := range s.Blocks {
		t := b.Schema.ImpliedType()
		if b.Nesting == NestingList {
			t = cty.List(t)
		}
		attrs[name] = t
	}
	return cty.Object(attrs)
}

// AttributeNames lists the attribute names in sorted order.
func (s *Schema) AttributeNames() []string { return sortedKeys(s.Attributes) }

// BlockNames lists the nested block names in sorted order.
func (s *Schema) BlockNames() []string { return sortedKeys(s.Blocks) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SchemaOf returns the schema of a kind, or nil for an unknown kind.
func SchemaOf(k Kind) *Schema {
	switch k {
	case KindImage:
		return ImageSchema
	case KindContainer:
		return ContainerSchema
	case KindNetwork:
		return NetworkSchema
	case KindVolume:
		return VolumeSchema
	}
	return nil
}
