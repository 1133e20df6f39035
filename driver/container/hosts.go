package container

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/internal/atomicfile"
	"github.com/seed-e88ffcd2/berth/internal/filelock"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"
)

// meta is what berth records about a container beside libcontainer's own
// state: what name resolution between containers and Delete need, the
// in-place attributes Update changes, and whose container it is.
type meta struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Hostname    string            `json:"hostname"`
	Netns       string            `json:"netns,omitempty"`
	Attachments []attachmentMeta  `json:"attachments,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Restart     string            `json:"restart,omitempty"`
	StopSignal  string            `json:"stop_signal,omitempty"`
	StopTimeout string            `json:"stop_timeout,omitempty"`
	// Healthcheck is the check the agent's supervisor runs, changed in
	// place by Update like the restart policy.
	Healthcheck *resource.HealthcheckSpec `json:"healthcheck,omitempty"`
	// ImageHealthcheck is the image's HEALTHCHECK, the container's
	// Healthcheck whenever its spec sets none (as Docker runs it).
	ImageHealthcheck *resource.HealthcheckSpec `json:"image_healthcheck,omitempty"`
	// Started is set once the init runs; a directory without it is the
	// leftover of a create that did not finish.
	Started bool `json:"started"`
	// Owner is who made the container (resource.Owner), written before
	// anything else so that even a create in progress is claimed; empty
	// for a container an older berth made.
	Owner string `json:"owner,omitempty"`
	// SpecHash fingerprints the value the container was made from
	// (specHash), so Create adopts it only if it would make the same one.
	SpecHash string `json:"spec_hash,omitempty"`
	// Image and Command are what the container runs, for people.
	Image   string    `json:"image,omitempty"`
	Command []string  `json:"command,omitempty"`
	Created time.Time `json:"created"`
	// StoppedByUser is set by berth stop and kill and cleared by start: a
	// restart policy leaves such a container alone.
	StoppedByUser bool `json:"stopped_by_user,omitempty"`
}

// attachmentMeta is one bridge network the container is attached to.
type attachmentMeta struct {
	Network string              `json:"network"`
	IfName  string              `json:"ifname"`
	IPv4    string              `json:"ipv4,omitempty"` // the static address asked for
	Ports   []resource.PortSpec `json:"ports,omitempty"`
	Aliases []string            `json:"aliases,omitempty"`
	IP      string              `json:"ip,omitempty"` // the address given
}

func (a attachmentMeta) attachment(id, netns string) driver.Attachment {
	return driver.Attachment{Network: a.Network, ContainerID: id, NetNS: netns, IfName: a.IfName, Ports: a.Ports, IPv4: a.IPv4}
}

func (m *meta) networkNames() []string {
	names := make([]string, 0, len(m.Attachments))
	for _, a := range m.Attachments {
		names = append(names, a.Network)
	}
	return names
}

// computed fills the computed attributes of v from the record.
func (m *meta) computed(v cty.Value) cty.Value {
	ips := map[string]string{}
	first := ""
	for _, a := range m.Attachments {
		ips[a.Network] = a.IP
		if first == "" {
			first = a.IP
		}
	}
	return resource.WithAttrs(v, map[string]cty.Value{
		"id":           cty.StringVal(m.ID),
		"ip_address":   cty.StringVal(first),
		"ip_addresses": resource.StringMapVal(ips),
	})
}

func writeMeta(dir string, m *meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "meta.json"), data, 0o644)
}

func readMeta(dir string) (*meta, error) {
	path := filepath.Join(dir, "meta.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &fs.PathError{Op: "parse", Path: path, Err: err}
	}
	return &m, nil
}

// unreadableOwner refuses to touch container id, whose record exists but
// cannot be read (err, from readMeta): berth cannot tell whose it is.
func unreadableOwner(dir, id string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return resource.Errorf(resource.ErrConflict, "container %q: its owner record %s cannot be read (%v), so berth cannot tell whose container it is and leaves it alone; inspect that file, and repair it or remove the container by hand",
		id, filepath.Join(dir, "meta.json"), err)
}

// claim makes container id's directory and its record m, which names the
// owner, before anything else of the container exists, so that from then
// on every other project finds the name taken. The record is written to a
// temporary file and linked into place, which fails if a record exists
// (O_EXCL's guarantee, without a torn record after a crash). The caller
// holds lockName(id).
func claim(dir string, m *meta) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".meta.json.claim-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if err := tmp.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return werr
	}
	if err := os.Link(tmp.Name(), filepath.Join(dir, "meta.json")); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// locksDir, under Config.StateDir, holds one lock file per container name
// in use. Container names start with a letter or digit, so it never
// collides with a container's directory.
const locksDir = ".locks"

// lockName takes the host-wide lock on container name id, across
// processes: Create holds it from reading the name's record through
// writing its claim, Update and Delete while they change or remove the
// record, so another project's create never finds the name free half way
// through, nor cleans up what this one is building. The lock file goes
// when the name is released (the container's directory is gone).
func (d *Driver) lockName(id string) (unlock func(), err error) {
	// Names reach here from API requests too: never let one name a path
	// outside the locks directory.
	if !validID(id) {
		return nil, resource.Errorf(resource.ErrNotFound, "no container %q on this host (berth ps -a lists them)", id)
	}
	path := filepath.Join(d.cfg.StateDir, locksDir, id+".lock")
	f, err := filelock.Lock(path)
	if err != nil {
		return nil, fmt.Errorf("lock container name %s: %w", id, err)
	}
	return func() {
		if _, err := os.Lstat(d.dir(id)); errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(path)
		}
		f.Close()
	}, nil
}

// allMeta reads the records of every container on the host.
func (d *Driver) allMeta() ([]*meta, error) {
	entries, err := os.ReadDir(d.cfg.StateDir)
	if err != nil {
		return nil, err
	}
	var all []*meta
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		m, err := readMeta(filepath.Join(d.cfg.StateDir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		all = append(all, m)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all, nil
}

// refreshHosts rewrites the hosts file of every container attached to one
// of networks, and of the containers ids, from the records of all. Each
// file is rewritten in place: it is bind-mounted into the running
// container, and a rename would leave the container with the old inode.
func (d *Driver) refreshHosts(networks []string, ids ...string) error {
	unlock, err := d.lockHosts()
	if err != nil {
		return err
	}
	defer unlock()
	all, err := d.allMeta()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range all {
		if !slices.Contains(ids, m.ID) && !sharesNetwork(m, networks) {
			continue
		}
		path := filepath.Join(d.dir(m.ID), "hosts")
		if err := writeInPlace(path, hostsFile(m, all)); err != nil {
			errs = append(errs, fmt.Errorf("hosts of container %s: %w", m.Name, err))
		}
	}
	return errors.Join(errs...)
}

// lockHosts serialises hosts-file rewrites and the removal of container
// records, within this process and across processes.
func (d *Driver) lockHosts() (unlock func(), err error) {
	d.hostsMu.Lock()
	lock, err := os.OpenFile(filepath.Join(d.cfg.StateDir, ".hosts.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		d.hostsMu.Unlock()
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		d.hostsMu.Unlock()
		return nil, err
	}
	return func() { lock.Close(); d.hostsMu.Unlock() }, nil
}

// forget removes a container's record under the hosts lock, so that no
// peer's refresh writes into its directory while it is being removed.
func (d *Driver) forget(id string) error {
	unlock, err := d.lockHosts()
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(filepath.Join(d.dir(id), "meta.json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func sharesNetwork(m *meta, networks []string) bool {
	for _, a := range m.Attachments {
		if slices.Contains(networks, a.Network) {
			return true
		}
	}
	return false
}

// hostsFile is the /etc/hosts of container m: localhost, its own names,
// and every other container it shares a network with under its name and
// that attachment's aliases, at its address on that network.
func hostsFile(m *meta, all []*meta) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	own := "127.0.1.1"
	if len(m.Attachments) > 0 && m.Attachments[0].IP != "" {
		own = m.Attachments[0].IP
	}
	fmt.Fprintf(&b, "%s\t%s\n", own, strings.Join(uniq(append([]string{m.Hostname, m.Name}, ownAliases(m)...)), " "))
	seen := map[string]bool{}
	for _, a := range m.Attachments {
		for _, p := range all {
			if p.ID == m.ID {
				continue
			}
			for _, pa := range p.Attachments {
				if pa.Network != a.Network || pa.IP == "" {
					continue
				}
				line := fmt.Sprintf("%s\t%s\n", pa.IP, strings.Join(uniq(append([]string{p.Name}, pa.Aliases...)), " "))
				if !seen[line] {
					seen[line] = true
					b.WriteString(line)
				}
			}
		}
	}
	return b.Bytes()
}

func ownAliases(m *meta) []string {
	if len(m.Attachments) == 0 {
		return nil
	}
	return m.Attachments[0].Aliases
}

func uniq(names []string) []string {
	var out []string
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// writeInPlace truncates and rewrites path, keeping its inode, and leaves
// it alone when its content is already data.
func writeInPlace(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeEtcFiles writes the container's /etc/hostname and /etc/resolv.conf.
func writeEtcFiles(dir, hostname string, hostNet bool) error {
	if err := writeInPlace(filepath.Join(dir, "hostname"), []byte(hostname+"\n")); err != nil {
		return err
	}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	resolv := host
	if !hostNet {
		resolv = resolvConf(host)
	}
	return writeInPlace(filepath.Join(dir, "resolv.conf"), resolv)
}

// resolvConf adapts the host's resolv.conf to a container with its own
// network namespace: a nameserver on the host's loopback (a local
// resolver such as systemd-resolved) cannot be reached from there, so
// those lines go, and Docker's public fallback is used when none is left.
func resolvConf(host []byte) []byte {
	var b bytes.Buffer
	servers := 0
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && a.IsLoopback() {
				continue
			}
			servers++
		}
		b.WriteString(line + "\n")
	}
	if servers == 0 {
		b.WriteString("nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
	}
	return b.Bytes()
}

// etcMounts bind-mounts berth's hosts, hostname and resolv.conf over the
// image's, except where the user mounts something there.
func etcMounts(dir string, user []resource.MountSpec) []specs.Mount {
	var out []specs.Mount
	for _, name := range []string{"hosts", "hostname", "resolv.conf"} {
		target := "/etc/" + name
		if slices.ContainsFunc(user, func(m resource.MountSpec) bool { return filepath.Clean(m.Target) == target }) {
			continue
		}
		out = append(out, specs.Mount{
			Destination: target, Type: "bind", Source: filepath.Join(dir, name),
			Options: []string{"bind", "rprivate", "nosuid", "nodev", "noexec"},
		})
	}
	return out
}
