package network

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/resource"
)

// TestPublishedPortFromAnotherHostUnderForwardDrop: another host (a
// namespace joined to this one by a veth) reaches a published port although
// the host drops forwarded traffic from it, as hosts where Docker runs do;
// Detach takes berth's admitting rule away again.
func TestPublishedPortFromAnotherHostUnderForwardDrop(t *testing.T) {
	e := newEnv(t)
	if e.d.netfilter != "iptables" {
		t.Skip("the firewall plugin and its admin chain need iptables")
	}
	name := uniq("fwd")
	e.create(name, nil)
	ctr := e.netns()
	serve(t, ctr, 8080, "from the container")

	// The other host: 10.217.N.2/30 in its own namespace, the host's end
	// 10.217.N.1/30. Forwarded traffic from it is dropped after the CNI
	// rules, as a DROP policy would.
	n := 1 + rand.IntN(250)
	hostIP, remoteIP := fmt.Sprintf("10.217.%d.1", n), fmt.Sprintf("10.217.%d.2", n)
	remote := e.netns()
	remoteName := remote[strings.LastIndex(remote, "/")+1:]
	hostEnd, remoteEnd := uniq("vh")[:11], uniq("vr")[:11]
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "link", "add", hostEnd, "type", "veth", "peer", "name", remoteEnd)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostEnd).Run() })
	run("ip", "link", "set", remoteEnd, "netns", remoteName)
	run("ip", "addr", "add", hostIP+"/30", "dev", hostEnd)
	run("ip", "link", "set", hostEnd, "up")
	run("ip", "netns", "exec", remoteName, "ip", "addr", "add", remoteIP+"/30", "dev", remoteEnd)
	run("ip", "netns", "exec", remoteName, "ip", "link", "set", remoteEnd, "up")
	run("ip", "netns", "exec", remoteName, "ip", "route", "add", "default", "via", hostIP)
	drop := []string{"FORWARD", "-i", hostEnd, "-j", "DROP"}
	run(append([]string{"iptables", "-A"}, drop...)...)
	t.Cleanup(func() { _ = exec.Command("iptables", append([]string{"-D"}, drop...)...).Run() })

	port := freePort(t)
	a := driver.Attachment{Network: name, ContainerID: uniq("c"), NetNS: ctr, IfName: "eth0",
		Ports: []resource.PortSpec{{Published: port, Target: 8080, Protocol: "tcp"}}}
	if _, err := e.attach(a); err != nil {
		t.Fatal(err)
	}
	fetch := func() (string, error) {
		out, err := exec.Command("ip", "netns", "exec", remoteName, "busybox", "nc", "-w", "2", hostIP, strconv.Itoa(port)).CombinedOutput()
		return string(out), err
	}
	if got, err := fetch(); err != nil || got != "from the container" {
		t.Fatalf("from the other host: %q, %v", got, err)
	}
	if err := e.d.Detach(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("iptables", "-S", adminChain).CombinedOutput()
	if strings.Contains(string(out), a.ContainerID) {
		t.Errorf("rules of the detached container left in %s:\n%s", adminChain, out)
	}
}
