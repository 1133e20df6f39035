// Package resource is berth's shared vocabulary: resource addresses, kinds,
// the schema of each kind (attribute types and whether a change is applied in
// place or forces a replacement, declared once next to the attribute), the
// typed specs drivers decode, and the sentinel errors every layer shares.
//
// It imports only cty and hcl (for source ranges); every other berth package
// may import it, and it imports none of them.
package resource

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind names a kind of resource, as written in HCL ("container").
type Kind string

// The kinds berth manages.
const (
	KindImage     Kind = "image"
	KindContainer Kind = "container"
	KindNetwork   Kind = "network"
	KindVolume    Kind = "volume"
)

// Kinds lists every kind in the order berth documents them.
var Kinds = []Kind{KindImage, KindNetwork, KindVolume, KindContainer}

// Key is an instance key in HCL index syntax without brackets: "" for a
// resource without count or for_each, `2` for count, `"eu"` for for_each.
type Key string

// NoKey is the key of a resource declared without count or for_each.
const NoKey Key = ""

// IntKey is the key of instance n of a counted resource.
func IntKey(n int) Key { return Key(strconv.Itoa(n)) }

// StringKey is the key of a for_each instance.
func StringKey(s string) Key { return Key(strconv.Quote(s)) }

// Addr is the address of one resource instance: container.web,
// container.web[2], network.lan["eu"]. It is a comparable value, used as is
// for plan entries, state keys, graph vertices and messages.
type Addr struct {
	Kind Kind
	Name string
	Key  Key
}

// String renders the address in HCL reference syntax.
func (a Addr) String() string {
	s := string(a.Kind) + "." + a.Name
	if a.Key != NoKey {
		s += "[" + string(a.Key) + "]"
	}
	return s
}

// Resource is the address without its instance key: what a count or
// for_each block declares.
func (a Addr) Resource() Addr { return Addr{Kind: a.Kind, Name: a.Name} }

// Less orders addresses for stable output: by kind, name, then key (numeric
// keys numerically).
func (a Addr) Less(b Addr) bool {
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	ai, aerr := strconv.Atoi(string(a.Key))
	bi, berr := strconv.Atoi(string(b.Key))
	if aerr == nil && berr == nil {
		return ai < bi
	}
	return a.Key < b.Key
}

// ParseAddr reads an address written as String renders it.
func ParseAddr(s string) (Addr, error) {
	var a Addr
	rest := s
	if i := strings.IndexByte(rest, '['); i >= 0 {
		if !strings.HasSuffix(rest, "]") {
			return a, fmt.Errorf("address %q: missing closing bracket", s)
		}
		key := rest[i+1 : len(rest)-1]
		if _, err := strconv.Atoi(key); err != nil {
			if _, err := strconv.Unquote(key); err != nil {
				return a, fmt.Errorf("address %q: key must be a number or a quoted string", s)
			}
		}
		a.Key = Key(key)
		rest = rest[:i]
	}
	kind, name, ok := strings.Cut(rest, ".")
	if !ok || name == "" {
		return a, fmt.Errorf("address %q: want KIND.NAME, such as container.web", s)
	}
	a.Kind, a.Name = Kind(kind), name
	if SchemaOf(a.Kind) == nil {
		return a, fmt.Errorf("address %q: unknown kind %q (want one of image, network, volume, container)", s, kind)
	}
	return a, nil
}

// MarshalText makes addresses usable as JSON strings and map keys.
func (a Addr) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText parses an address written by MarshalText.
func (a *Addr) UnmarshalText(b []byte) error {
	p, err := ParseAddr(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}
