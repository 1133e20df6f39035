package network

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/vishvananda/netlink"
)

// ensureBridge makes the bridge if it is missing, gives it exactly the
// gateway address (a stale one from an earlier subnet would route the old
// subnet here) and brings it up. made says whether it created the link.
func ensureBridge(name string, gw netip.Prefix) (made bool, err error) {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return false, fmt.Errorf("create bridge %s: %w", name, err)
		}
		made = true
		if link, err = netlink.LinkByName(name); err != nil {
			return made, fmt.Errorf("bridge %s: %w", name, err)
		}
	case err != nil:
		return false, fmt.Errorf("bridge %s: %w", name, err)
	case link.Type() != "bridge":
		return false, resource.Errorf(resource.ErrConflict, "a %s link named %s is in the way of the bridge", link.Type(), name)
	}

	addrs, err := addrList(link)
	if err != nil {
		return made, fmt.Errorf("bridge %s: %w", name, err)
	}
	have := false
	for _, a := range addrs {
		p, ok := netip.AddrFromSlice(a.IP.To4())
		bits, _ := a.Mask.Size()
		if ok && netip.PrefixFrom(p, bits) == gw {
			have = true
			continue
		}
		if err := netlink.AddrDel(link, &a); err != nil {
			return made, fmt.Errorf("bridge %s: remove stale address %s: %w", name, a.IPNet, err)
		}
	}
	if !have {
		addr, _ := netlink.ParseAddr(gw.String())
		if err := netlink.AddrAdd(link, addr); err != nil {
			return made, fmt.Errorf("bridge %s: add address %s: %w", name, gw, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return made, fmt.Errorf("bridge %s: set up: %w", name, err)
	}
	return made, nil
}

// deleteBridge removes the bridge; a bridge already gone is fine, and a
// link of another type by that name is not berth's to remove.
func deleteBridge(name string) error {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if link.Type() != "bridge" {
		return nil
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	return nil
}

func bridgeExists(name string) (bool, error) {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("bridge %s: %w", name, err)
	}
	return link.Type() == "bridge", nil
}

// addrList lists a link's IPv4 addresses, retrying a dump interrupted by a
// concurrent change.
func addrList(link netlink.Link) ([]netlink.Addr, error) {
	var addrs []netlink.Addr
	var err error
	for range 5 {
		addrs, err = netlink.AddrList(link, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return addrs, err
}
