package network

import (
	"encoding/json"
	"os/exec"
)

// cniVersion of the configuration lists berth writes. 1.0.0 is what every
// plugin of the standard set speaks; libcni caches results from it on.
const cniVersion = "1.0.0"

// The CNI configuration list of a bridge network. Its shape:
//
//	bridge    the veth pair and the bridge; the gateway address and, unless
//	          the network is internal, masquerading of outbound traffic;
//	          host-local hands out addresses, and takes a requested one
//	          through the "ips" capability
//	portmap   published ports ("portMappings" capability), DNAT from the
//	          host and from localhost, hairpin
//	firewall  accepts the container's forwarded traffic, for hosts whose
//	          FORWARD policy is DROP (Docker sets it)
type confList struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	// LoadOnlyInlinedPlugins stops libcni from adding plugins found in a
	// directory named after the network beside the list.
	LoadOnlyInlinedPlugins bool  `json:"loadOnlyInlinedPlugins"`
	Plugins                []any `json:"plugins"`
}

type bridgeConf struct {
	Type          string          `json:"type"`
	Bridge        string          `json:"bridge"`
	IsGateway     bool            `json:"isGateway"`
	IPMasq        bool            `json:"ipMasq"`
	IPMasqBackend string          `json:"ipMasqBackend,omitempty"`
	HairpinMode   bool            `json:"hairpinMode"`
	Capabilities  map[string]bool `json:"capabilities"`
	IPAM          ipamConf        `json:"ipam"`
}

type ipamConf struct {
	Type    string        `json:"type"`
	DataDir string        `json:"dataDir"`
	Ranges  [][]rangeConf `json:"ranges"`
	Routes  []routeConf   `json:"routes,omitempty"`
}

type rangeConf struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
}

type routeConf struct {
	Dst string `json:"dst"`
}

type portmapConf struct {
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
	Backend      string          `json:"backend"`
}

type firewallConf struct {
	Type    string `json:"type"`
	Backend string `json:"backend"`
}

// conflist renders the network's configuration list. netfilter is the
// backend of portmap and of masquerading; the firewall plugin has only an
// iptables backend (besides firewalld), and an nftables accept could not
// overrule an iptables FORWARD DROP anyway.
func (n *bridgeNet) conflist(ipamDataDir, netfilter string) ([]byte, error) {
	ipam := ipamConf{
		Type:    "host-local",
		DataDir: ipamDataDir,
		Ranges:  [][]rangeConf{{{Subnet: n.subnet.String(), Gateway: n.gateway.String()}}},
	}
	masqBackend := ""
	if !n.internal {
		ipam.Routes = []routeConf{{Dst: "0.0.0.0/0"}}
		masqBackend = netfilter
	}
	list := confList{
		CNIVersion:             cniVersion,
		Name:                   n.name,
		LoadOnlyInlinedPlugins: true,
		Plugins: []any{
			bridgeConf{
				Type: "bridge", Bridge: n.bridge, IsGateway: true, HairpinMode: true,
				IPMasq: !n.internal, IPMasqBackend: masqBackend,
				Capabilities: map[string]bool{"ips": true},
				IPAM:         ipam,
			},
			portmapConf{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}, Backend: netfilter},
			firewallConf{Type: "firewall", Backend: "iptables"},
		},
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// detectNetfilter prefers nftables where the nft command works: portmap and
// masquerading then change the ruleset in one transaction per ADD instead
// of a dozen iptables runs, each of them taking the xtables lock.
func detectNetfilter() string {
	if path, err := exec.LookPath("nft"); err == nil && exec.Command(path, "list", "tables").Run() == nil {
		return "nftables"
	}
	return "iptables"
}
