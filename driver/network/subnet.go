package network

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/zclconf/go-cty/cty"
)

// wanted is what the user asked of a bridge network: empty subnet or
// gateway are chosen by resolve.
type wanted struct {
	name, subnet, gateway string
}

// bridgeNet is a bridge network with its addresses decided.
type bridgeNet struct {
	name     string
	subnet   netip.Prefix
	gateway  netip.Addr
	bridge   string
	internal bool
}

// computed are the attributes the driver fills in.
func (n *bridgeNet) computed() map[string]cty.Value {
	return map[string]cty.Value{
		"subnet":  cty.StringVal(n.subnet.String()),
		"gateway": cty.StringVal(n.gateway.String()),
		"bridge":  cty.StringVal(n.bridge),
	}
}

// hostRoute is one IPv4 route of the host's main table.
type hostRoute struct {
	dst netip.Prefix
	dev string
}

// resolve decides a bridge network's subnet and gateway: the user's,
// checked against the host's routes and the other berth networks, or the
// first free /24 of the pool. A network already made keeps its subnet, so
// that creating it again does not move it. The caller holds d.mu.
func (d *Driver) resolve(w wanted) (*bridgeNet, error) {
	n := &bridgeNet{name: w.name, bridge: BridgeName(w.name)}
	recs, err := d.readRecords()
	if err != nil {
		return nil, err
	}
	if w.subnet == "" {
		for _, r := range recs {
			if r.Name == w.name && r.Driver == modeBridge && r.Subnet != "" {
				w.subnet = r.Subnet
				if w.gateway == "" {
					w.gateway = r.Gateway
				}
			}
		}
	}
	// Other networks: those made, and those a plan has chosen for.
	others := map[string]netip.Prefix{}
	for name, p := range d.previewed {
		others[name] = p
	}
	for _, r := range recs {
		if p, err := netip.ParsePrefix(r.Subnet); err == nil {
			others[r.Name] = p
		}
	}
	delete(others, w.name)
	routes, err := d.routes()
	if err != nil {
		return nil, fmt.Errorf("list the host's routes: %w", err)
	}
	// The network's own bridge carries its subnet's route.
	var foreign []hostRoute
	for _, r := range routes {
		if r.dev != n.bridge && r.dst.Bits() > 0 {
			foreign = append(foreign, r)
		}
	}

	if w.subnet == "" {
		n.subnet, err = firstFree(d.pool, others, foreign)
	} else {
		n.subnet, err = netip.ParsePrefix(w.subnet)
		if err == nil && (!n.subnet.Addr().Is4() || n.subnet.Masked() != n.subnet || n.subnet.Bits() > 30) {
			err = fmt.Errorf("subnet %s is not an IPv4 subnet of /30 or larger without host bits", w.subnet)
		}
		if err == nil {
			err = overlap(n.subnet, others, foreign)
		}
	}
	if err != nil {
		return nil, err
	}

	if w.gateway == "" {
		n.gateway = n.subnet.Addr().Next()
	} else if n.gateway, err = netip.ParseAddr(w.gateway); err != nil {
		return nil, fmt.Errorf("gateway %q is not an IPv4 address", w.gateway)
	}
	if !usable(n.subnet, n.gateway) {
		return nil, fmt.Errorf("gateway %s is not a host address of subnet %s", n.gateway, n.subnet)
	}
	return n, nil
}

// overlap says what subnet collides with, in words a user can act on.
func overlap(subnet netip.Prefix, others map[string]netip.Prefix, routes []hostRoute) error {
	for _, name := range slices.Sorted(maps.Keys(others)) {
		if p := others[name]; p.Overlaps(subnet) {
			return fmt.Errorf("subnet %s overlaps network %s (%s); choose another subnet", subnet, name, p)
		}
	}
	for _, r := range routes {
		if r.dst.Overlaps(subnet) {
			return fmt.Errorf("subnet %s overlaps the route %s via %s; choose another subnet", subnet, r.dst, r.dev)
		}
	}
	return nil
}

// firstFree is the lowest /24 of pool that overlaps nothing: lowest, so the
// choice is the same at plan and at apply, and predictable for a user.
func firstFree(pool netip.Prefix, others map[string]netip.Prefix, routes []hostRoute) (netip.Prefix, error) {
	start := toU32(pool.Addr())
	for i := range uint32(1) << (24 - pool.Bits()) {
		p := netip.PrefixFrom(fromU32(start+i<<8), 24)
		if overlap(p, others, routes) == nil {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 is left in the pool %s: set a subnet", pool)
}

// usable says whether a is an address of subnet other than its network and
// broadcast addresses.
func usable(subnet netip.Prefix, a netip.Addr) bool {
	broadcast := fromU32(toU32(subnet.Addr()) | (uint32(1)<<(32-subnet.Bits()) - 1))
	return a.Is4() && subnet.Contains(a) && a != subnet.Addr() && a != broadcast
}

func toU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromU32(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

// netlinkRoutes lists the main table's IPv4 routes. A dump interrupted by a
// concurrent change is retried, as the CNI plugins do.
func netlinkRoutes() ([]hostRoute, error) {
	var routes []netlink.Route
	var err error
	for range 5 {
		routes, err = netlink.RouteList(nil, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	out := make([]hostRoute, 0, len(routes))
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		p, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		bits, _ := r.Dst.Mask.Size()
		dev, seen := names[r.LinkIndex]
		if !seen {
			dev = fmt.Sprintf("ifindex %d", r.LinkIndex)
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				dev = l.Attrs().Name
			}
			names[r.LinkIndex] = dev
		}
		out = append(out, hostRoute{dst: netip.PrefixFrom(p, bits).Masked(), dev: dev})
	}
	return out, nil
}
