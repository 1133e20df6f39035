package network

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// Published ports and a FORWARD policy of DROP.
//
// portmap sends traffic for a published port to the container with DNAT,
// and that traffic crosses the host's FORWARD chain. Where Docker or a
// firewall set FORWARD's policy to DROP, the CNI firewall plugin admits
// only the container's own traffic and the replies to it, so other hosts
// could not reach a published port. berth admits it with one rule per
// published port in CNI-ADMIN — the chain the firewall plugin keeps for
// rules of the administrator's — tagged with the container and network so
// that Detach removes exactly its own.

const adminChain = "CNI-ADMIN"

func portRuleTag(containerID, network string) string {
	return "berth:" + containerID + "@" + network
}

// admitPorts adds the ACCEPT rules for a container's published ports. It is
// idempotent. Hosts without iptables have no firewall plugin and nothing
// to admit through.
func (d *Driver) admitPorts(containerID, network, ip string, ports []portMapping) error {
	if d.netfilter != "iptables" || len(ports) == 0 {
		return nil
	}
	ipt, err := iptables.New()
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	if ok, err := ipt.ChainExists("filter", adminChain); err != nil {
		return err
	} else if !ok {
		if err := ipt.NewChain("filter", adminChain); err != nil {
			return err
		}
	}
	for _, p := range ports {
		rule := []string{"-d", ip + "/32", "-p", p.Protocol, "-m", p.Protocol, "--dport", strconv.Itoa(p.ContainerPort),
			"-m", "comment", "--comment", portRuleTag(containerID, network), "-j", "ACCEPT"}
		if err := ipt.AppendUnique("filter", adminChain, rule...); err != nil {
			return fmt.Errorf("admit published port %s: %w", p, err)
		}
	}
	return nil
}

// releasePorts removes the rules admitPorts added for the container on the
// network; removing what is not there succeeds.
func (d *Driver) releasePorts(containerID, network string) error {
	return d.releaseRules(func(id, net string) bool { return id == containerID && net == network })
}

// releaseRules removes berth's rules whose container and network match.
func (d *Driver) releaseRules(match func(containerID, network string) bool) error {
	if d.netfilter != "iptables" {
		return nil
	}
	ipt, err := iptables.New()
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	if ok, err := ipt.ChainExists("filter", adminChain); err != nil || !ok {
		return err
	}
	rules, err := ipt.List("filter", adminChain)
	if err != nil {
		return err
	}
	for _, r := range rules {
		// iptables -S quotes the comment; tags have no spaces, so the rule
		// is given back field by field without the quotes.
		fields := strings.Fields(r)
		for i := range fields {
			fields[i] = strings.Trim(fields[i], `"`)
		}
		id, network, ok := ruleTag(fields)
		if len(fields) < 3 || fields[0] != "-A" || !ok || !match(id, network) {
			continue
		}
		if err := ipt.DeleteIfExists("filter", adminChain, fields[2:]...); err != nil {
			return fmt.Errorf("remove published port rule: %w", err)
		}
	}
	return nil
}

// ruleTag reads the container and network of a rule berth added.
func ruleTag(fields []string) (containerID, network string, ok bool) {
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] != "--comment" {
			continue
		}
		tag, found := strings.CutPrefix(fields[i+1], "berth:")
		if !found {
			return "", "", false
		}
		return strings.Cut(tag, "@")
	}
	return "", "", false
}
