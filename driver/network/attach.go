package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// portMapping is one entry of the portMappings capability, as portmap reads
// it and as libcni caches it.
type portMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func (p portMapping) String() string {
	host := p.HostIP
	if host == "" {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, strconv.Itoa(p.HostPort)) + "/" + p.Protocol
}

// clashes says whether two mappings want the same host port: the unspecified
// address takes the port on every address.
func (p portMapping) clashes(q portMapping) bool {
	return p.HostPort == q.HostPort && p.Protocol == q.Protocol &&
		(p.HostIP == "" || q.HostIP == "" || p.HostIP == q.HostIP)
}

func portMappings(ports []resource.PortSpec) []portMapping {
	out := make([]portMapping, 0, len(ports))
	for _, p := range ports {
		m := portMapping{HostPort: p.Published, ContainerPort: p.Target, Protocol: strings.ToLower(p.Protocol), HostIP: p.HostIP}
		if m.Protocol == "" {
			m.Protocol = "tcp"
		}
		if a, err := netip.ParseAddr(m.HostIP); err == nil && a.IsUnspecified() {
			m.HostIP = ""
		}
		out = append(out, m)
	}
	return out
}

func ifName(a driver.Attachment) string {
	if a.IfName == "" {
		return "eth0"
	}
	return a.IfName
}

// Attach runs CNI ADD for the container on the network and returns the
// address it got. Published ports are checked first, because portmap maps
// a port that is taken without complaint: a host port another attachment
// publishes or a host process listens on fails with resource.ErrConflict
// before anything changes. Attaching again with the same namespace returns
// the first result. Attach also brings the namespace's lo up, so a
// namespace it attached works whoever made it.
func (d *Driver) Attach(ctx context.Context, a driver.Attachment) (driver.AttachResult, error) {
	rec, err := d.readRecord(a.Network)
	if err != nil {
		return driver.AttachResult{}, err
	}
	if rec.Driver != modeBridge {
		return driver.AttachResult{}, fmt.Errorf("network %s is a %s network: containers share that namespace instead of attaching", a.Network, rec.Driver)
	}
	if a.ContainerID == "" || a.NetNS == "" {
		return driver.AttachResult{}, fmt.Errorf("attach to network %s: the container ID and namespace path are required", a.Network)
	}
	list, err := libcni.ConfListFromFile(d.confPath(a.Network))
	if errors.Is(err, os.ErrNotExist) {
		return driver.AttachResult{}, fmt.Errorf("network %s: CNI configuration missing: %w", a.Network, resource.ErrNotFound)
	} else if err != nil {
		return driver.AttachResult{}, fmt.Errorf("network %s: %w", a.Network, err)
	}
	ports := portMappings(a.Ports)
	rt := &libcni.RuntimeConf{
		ContainerID:    a.ContainerID,
		NetNS:          a.NetNS,
		IfName:         ifName(a),
		CapabilityArgs: map[string]any{"portMappings": ports},
	}
	if a.IPv4 != "" {
		rt.CapabilityArgs["ips"] = []string{a.IPv4}
	}
	fail := func(err error) (driver.AttachResult, error) {
		return driver.AttachResult{}, fmt.Errorf("attach %s to network %s: %w", a.ContainerID, a.Network, err)
	}

	if res, ok, err := d.cachedAttachment(ctx, list, rt); err != nil {
		return fail(err)
	} else if ok {
		if err := d.admitPorts(a.ContainerID, a.Network, res.IPv4, ports); err != nil {
			return fail(err)
		}
		return res, nil
	}

	if len(ports) > 0 {
		// Held from the check until portmap has written its rules, so that
		// two containers cannot both find the same port free.
		unlock, err := d.lock()
		if err != nil {
			return fail(err)
		}
		defer unlock()
		if err := d.checkPorts(a.ContainerID, ports); err != nil {
			return fail(err)
		}
	}
	if a.IPv4 != "" {
		if err := d.checkStaticIP(rec, a); err != nil {
			return fail(err)
		}
	}

	result, err := d.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		// ADD is not atomic: undo what the plugins that succeeded did
		// (veth, address reservation). DEL of what is absent succeeds.
		_ = d.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		return fail(err)
	}
	res, err := attachResult(result, rt.IfName)
	if err == nil {
		err = loopbackUp(a.NetNS)
	}
	if err == nil {
		err = d.admitPorts(a.ContainerID, a.Network, res.IPv4, ports)
	}
	if err != nil {
		_ = d.releasePorts(a.ContainerID, a.Network)
		_ = d.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		return fail(err)
	}
	return res, nil
}

// cachedAttachment returns the result of an earlier ADD of the same
// container and interface when it still holds: same namespace, interface
// present. A stale one (the namespace was made again) is removed with DEL so
// the ADD that follows starts clean.
func (d *Driver) cachedAttachment(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (driver.AttachResult, bool, error) {
	cached, err := d.cni.GetNetworkListCachedResult(list, rt)
	if err != nil || cached == nil {
		return driver.AttachResult{}, false, nil
	}
	// An unreadable cache has nothing to reuse: fall through to DEL.
	atts, _ := d.cni.GetCachedAttachments(rt.ContainerID)
	for _, att := range atts {
		if att.Network != list.Name || att.IfName != rt.IfName {
			continue
		}
		if att.NetNS == rt.NetNS && linkExists(rt.NetNS, rt.IfName) {
			res, err := attachResult(cached, rt.IfName)
			return res, err == nil, nil
		}
	}
	if err := d.detach(ctx, list.Name, rt); err != nil {
		return driver.AttachResult{}, false, fmt.Errorf("remove stale attachment: %w", err)
	}
	return driver.AttachResult{}, false, nil
}

var _ driver.PortChecker = (*Driver)(nil)

// CheckPorts is checkPorts for plans: it runs without the lock, so it is a
// forecast that Attach confirms under the lock.
func (d *Driver) CheckPorts(_ context.Context, containerID string, ports []resource.PortSpec) error {
	return d.checkPorts(containerID, portMappings(ports))
}

// checkPorts refuses host ports that another berth attachment publishes or
// that a host process holds. Attach calls it holding the state lock.
func (d *Driver) checkPorts(containerID string, ports []portMapping) error {
	for i, p := range ports {
		for _, q := range ports[:i] {
			if p.clashes(q) {
				return resource.Errorf(resource.ErrConflict, "host port %s is published twice", p)
			}
		}
	}
	atts, err := d.cni.GetCachedAttachments("")
	if err != nil {
		return fmt.Errorf("read the CNI cache: %w", err)
	}
	for _, att := range atts {
		if att.ContainerID == containerID {
			continue
		}
		raw, err := json.Marshal(att.CapabilityArgs["portMappings"])
		if err != nil {
			continue
		}
		var theirs []portMapping
		if json.Unmarshal(raw, &theirs) != nil {
			continue
		}
		for _, p := range ports {
			for _, q := range theirs {
				if p.clashes(q) {
					// Their mapping, not ours: asking for 0.0.0.0:80 clashes
					// with their 127.0.0.1:80, and that is what they hold.
					return resource.Errorf(resource.ErrConflict, "host port %s is already published by container %s (network %s)",
						q, att.ContainerID, att.Network)
				}
			}
		}
	}
	for _, p := range ports {
		if err := probePort(p); err != nil {
			return err
		}
	}
	return nil
}

// probePort binds the host port for an instant: a process listening there
// would never see the connections portmap diverts to the container.
func probePort(p portMapping) error {
	addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
	var err error
	if p.Protocol == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp4", addr); err == nil {
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp4", addr); err == nil {
			l.Close()
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EADDRINUSE):
		return resource.Errorf(resource.ErrConflict, "host port %s is in use by a process on the host", p)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("host port %s: %s is not an address of this host", p, p.HostIP)
	}
	return fmt.Errorf("host port %s: %w", p, err)
}

// checkStaticIP refuses an address outside the subnet or held by another
// container, before host-local would refuse it with a less useful message.
func (d *Driver) checkStaticIP(rec record, a driver.Attachment) error {
	ip, err := netip.ParseAddr(a.IPv4)
	if err != nil || !ip.Is4() {
		return fmt.Errorf("%q is not an IPv4 address", a.IPv4)
	}
	subnet, err := netip.ParsePrefix(rec.Subnet)
	if err != nil {
		return fmt.Errorf("network %s: recorded subnet %q: %w", rec.Name, rec.Subnet, err)
	}
	if !usable(subnet, ip) || ip.String() == rec.Gateway {
		return fmt.Errorf("address %s is not free for containers in subnet %s (gateway %s)", ip, subnet, rec.Gateway)
	}
	// host-local records each address as a file holding "ID\r\nIFNAME".
	holder, err := os.ReadFile(filepath.Join(d.ipamDir(), rec.Name, ip.String()))
	if err != nil {
		return nil
	}
	id, _, _ := strings.Cut(string(holder), "\r\n")
	if strings.TrimSpace(id) == a.ContainerID {
		return nil
	}
	return resource.Errorf(resource.ErrConflict, "address %s on network %s is taken by container %s", ip, rec.Name, strings.TrimSpace(id))
}

// attachResult picks the container interface's IPv4 address and gateway.
func attachResult(r types.Result, ifname string) (driver.AttachResult, error) {
	res, err := types100.NewResultFromResult(r)
	if err != nil {
		return driver.AttachResult{}, err
	}
	for _, ip := range res.IPs {
		if ip.Address.IP.To4() == nil {
			continue
		}
		if ip.Interface != nil {
			if i := *ip.Interface; i < 0 || i >= len(res.Interfaces) || res.Interfaces[i].Name != ifname {
				continue
			}
		}
		out := driver.AttachResult{IPv4: ip.Address.IP.String()}
		if ip.Gateway != nil {
			out.Gateway = ip.Gateway.String()
		}
		return out, nil
	}
	return driver.AttachResult{}, fmt.Errorf("the CNI result has no IPv4 address on %s", ifname)
}

// inNetNS runs f with a netlink handle in the namespace at path.
func inNetNS(path string, f func(h *netlink.Handle) error) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return f(h)
}

func linkExists(nsPath, ifname string) bool {
	return inNetNS(nsPath, func(h *netlink.Handle) error {
		_, err := h.LinkByName(ifname)
		return err
	}) == nil
}

func loopbackUp(nsPath string) error {
	return inNetNS(nsPath, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		return h.LinkSetUp(lo)
	})
}

// Detach runs CNI DEL with the configuration and port mappings cached at
// ADD time, so it removes exactly what ADD made even if the network's
// configuration changed or was deleted since. The namespace must still
// exist: the bridge plugin reads the addresses inside it to remove the
// masquerade rules. Detaching what is not attached succeeds.
func (d *Driver) Detach(ctx context.Context, a driver.Attachment) error {
	rt := &libcni.RuntimeConf{ContainerID: a.ContainerID, NetNS: a.NetNS, IfName: ifName(a)}
	if err := d.detach(ctx, a.Network, rt); err != nil {
		return fmt.Errorf("detach %s from network %s: %w", a.ContainerID, a.Network, err)
	}
	return nil
}

func (d *Driver) detach(ctx context.Context, network string, rt *libcni.RuntimeConf) error {
	if err := d.releasePorts(rt.ContainerID, network); err != nil {
		return err
	}
	conf, cachedRT, err := d.cni.GetNetworkListCachedConfig(&libcni.NetworkConfigList{Name: network}, rt)
	if err != nil {
		return err
	}
	if conf == nil {
		// Nothing cached: not attached, or an ADD that died before
		// libcni cached it. DEL with the current list cleans up after the
		// latter and is harmless for the former.
		list, err := libcni.ConfListFromFile(d.confPath(network))
		if err != nil {
			return nil
		}
		return d.cni.DelNetworkList(ctx, list, rt)
	}
	list, err := libcni.ConfListFromBytes(conf)
	if err != nil {
		return fmt.Errorf("cached CNI configuration: %w", err)
	}
	// The bridge plugin learns which masquerade rules to remove from the
	// addresses inside the namespace. When the namespace is already gone
	// (a crash, a container removed by hand), the cached result still
	// knows them, and the rules are removed here instead of leaking.
	var orphaned []*net.IPNet
	if _, err := os.Stat(rt.NetNS); err != nil {
		if res, err := d.cni.GetNetworkListCachedResult(list, cachedRT); err == nil && res != nil {
			orphaned = addresses(res)
		}
	}
	if err := d.cni.DelNetworkList(ctx, list, cachedRT); err != nil {
		return err
	}
	if len(orphaned) > 0 {
		if err := ip.TeardownIPMasqForNetworks(orphaned, list.Name, rt.IfName, rt.ContainerID); err != nil {
			return fmt.Errorf("remove masquerade rules: %w", err)
		}
	}
	return nil
}

// addresses lists the addresses of a CNI result.
func addresses(r types.Result) []*net.IPNet {
	res, err := types100.NewResultFromResult(r)
	if err != nil {
		return nil
	}
	out := make([]*net.IPNet, 0, len(res.IPs))
	for _, c := range res.IPs {
		out = append(out, &c.Address)
	}
	return out
}

// GC runs CNI DEL for every cached attachment to a berth network that is
// not in keep: what a crash between a container's end and its Detach
// leaves behind (port mappings, masquerade rules, addresses).
func (d *Driver) GC(ctx context.Context, keep []driver.Attachment) error {
	recs, err := d.readRecords()
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range recs {
		if rec.Driver != modeBridge {
			continue
		}
		list, err := libcni.ConfListFromFile(d.confPath(rec.Name))
		if err != nil {
			continue
		}
		var valid []types.GCAttachment
		kept := map[string]bool{}
		for _, a := range keep {
			if a.Network == rec.Name {
				valid = append(valid, types.GCAttachment{ContainerID: a.ContainerID, IfName: ifName(a)})
				kept[a.ContainerID] = true
			}
		}
		if err := d.cni.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", rec.Name, err))
		}
		if err := d.releaseRules(func(id, network string) bool { return network == rec.Name && !kept[id] }); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", rec.Name, err))
		}
	}
	return errors.Join(errs...)
}
