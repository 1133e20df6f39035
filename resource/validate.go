package resource

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/zclconf/go-cty/cty"
)

// Validators shared by the kinds. Each takes a known, non-null value of the
// attribute's type and says what is wrong in words a user can act on.

func validatePort(v cty.Value) error {
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	if acc != 0 || n < 1 || n > 65535 {
		return fmt.Errorf("%s is not a port: want a whole number from 1 to 65535", bf.Text('f', -1))
	}
	return nil
}

func validatePositive(v cty.Value) error {
	if v.AsBigFloat().Sign() <= 0 {
		return fmt.Errorf("must be greater than zero")
	}
	return nil
}

func oneOf(allowed ...string) func(cty.Value) error {
	return func(v cty.Value) error {
		for _, a := range allowed {
			if v.AsString() == a {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v.AsString(), strings.Join(quoteAll(allowed), ", "))
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// ParseMemory reads a memory size such as "256M", "1.5g" or "1048576"
// (bytes), as Docker's --memory does.
func ParseMemory(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a memory size: write a number with an optional unit, such as \"256M\" or \"1G\"", s)
	}
	return n, nil
}

func validateMemory(v cty.Value) error {
	n, err := ParseMemory(v.AsString())
	if err != nil {
		return err
	}
	if n < 6*1024*1024 {
		return fmt.Errorf("%q is below the 6M minimum a container needs", v.AsString())
	}
	return nil
}

// validateSize checks a size with an optional unit, such as a tmpfs's
// "64M"; unlike a memory limit it has no minimum.
func validateSize(v cty.Value) error {
	_, err := ParseMemory(v.AsString())
	if err != nil {
		return fmt.Errorf("%q is not a size: write a number with an optional unit, such as \"64M\"", v.AsString())
	}
	return nil
}

func validateDuration(v cty.Value) error {
	d, err := time.ParseDuration(v.AsString())
	if err != nil || d < 0 {
		return fmt.Errorf("%q is not a duration: write one such as \"10s\" or \"1m30s\"", v.AsString())
	}
	return nil
}

func validatePositiveDuration(v cty.Value) error {
	d, err := time.ParseDuration(v.AsString())
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a duration greater than zero: write one such as \"10s\" or \"500ms\"", v.AsString())
	}
	return nil
}

func validateCount(v cty.Value) error {
	n, acc := v.AsBigFloat().Int64()
	if acc != 0 || n < 1 {
		return fmt.Errorf("%s is not a count: want a whole number of at least 1", v.AsBigFloat().Text('f', -1))
	}
	return nil
}

func validateNonEmptyList(v cty.Value) error {
	if v.LengthInt() == 0 {
		return fmt.Errorf("must not be empty")
	}
	return nil
}

func validateCIDR(v cty.Value) error {
	p, err := netip.ParsePrefix(v.AsString())
	if err != nil || !p.Addr().Is4() {
		return fmt.Errorf("%q is not an IPv4 subnet in CIDR notation, such as \"10.89.0.0/24\"", v.AsString())
	}
	if p.Masked() != p {
		return fmt.Errorf("%q has host bits set; the subnet is %s", v.AsString(), p.Masked())
	}
	if p.Bits() > 30 {
		return fmt.Errorf("%q is too small: a network needs at least a /30", v.AsString())
	}
	return nil
}

func validateIPv4(v cty.Value) error {
	a, err := netip.ParseAddr(v.AsString())
	if err != nil || !a.Is4() {
		return fmt.Errorf("%q is not an IPv4 address", v.AsString())
	}
	return nil
}

// Signals maps the signal names berth accepts to their numbers.
var Signals = map[string]int{
	"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGKILL": 9, "SIGUSR1": 10,
	"SIGUSR2": 12, "SIGTERM": 15, "SIGWINCH": 28, "SIGPWR": 30,
}

func validateSignal(v cty.Value) error {
	if _, ok := Signals[strings.ToUpper(v.AsString())]; !ok {
		return fmt.Errorf("%q is not a stop signal berth knows; use one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGPWR, SIGKILL", v.AsString())
	}
	return nil
}

// Capabilities lists the Linux capability names berth accepts, without the
// CAP_ prefix.
var Capabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF",
	"CHECKPOINT_RESTORE", "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER",
	"FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE", "LINUX_IMMUTABLE",
	"MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
	"SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE",
	"SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE",
	"SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM",
}

// DefaultCapabilities is the set a container gets before cap_add and
// cap_drop, the same as Docker's so images behave as they do there.
var DefaultCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
	"SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
	"AUDIT_WRITE",
}

// NormalizeCapability turns "cap_net_admin" or "NET_ADMIN" into "NET_ADMIN",
// and reports whether it names a capability ("ALL" included).
func NormalizeCapability(s string) (string, bool) {
	c := strings.TrimPrefix(strings.ToUpper(s), "CAP_")
	if c == "ALL" {
		return c, true
	}
	for _, k := range Capabilities {
		if k == c {
			return c, true
		}
	}
	return c, false
}

func validateCapabilities(v cty.Value) error {
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if !e.IsKnown() || e.IsNull() {
			continue
		}
		if _, ok := NormalizeCapability(e.AsString()); !ok {
			return fmt.Errorf("%q is not a Linux capability (such as \"NET_ADMIN\" or \"SYS_TIME\")", e.AsString())
		}
	}
	return nil
}

func validateRestart(v cty.Value) error {
	s := v.AsString()
	switch {
	case s == "no", s == "always", s == "unless-stopped", s == "on-failure":
		return nil
	case strings.HasPrefix(s, "on-failure:"):
		var n int
		if _, err := fmt.Sscanf(s, "on-failure:%d", &n); err == nil && n > 0 {
			return nil
		}
	}
	return fmt.Errorf("%q is not a restart policy: use \"no\", \"always\", \"unless-stopped\", \"on-failure\" or \"on-failure:N\"", s)
}

func validateAbsPath(v cty.Value) error {
	if !strings.HasPrefix(v.AsString(), "/") {
		return fmt.Errorf("%q must be an absolute path inside the container, such as \"/data\"", v.AsString())
	}
	return nil
}

// validateName checks names that become host object names (containers,
// networks, volumes): a letter or digit, then letters, digits, '.', '_', '-'.
func validateName(v cty.Value) error {
	s := v.AsString()
	if len(s) == 0 || len(s) > 63 {
		return fmt.Errorf("%q must be 1 to 63 characters long", s)
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			i > 0 && (r == '.' || r == '_' || r == '-')
		if !ok {
			return fmt.Errorf("%q may hold only letters, digits, '.', '_' and '-', and must start with a letter or digit", s)
		}
	}
	return nil
}

// validateHostname checks a hostname as RFC 1123 has it: labels of
// letters, digits and '-', neither starting nor ending with '-', of at most
// 63 characters, joined by dots, 253 characters in all. It is written into
// the container's /etc/hosts and /etc/hostname, where a space or a newline
// (a file() read without trimspace) would break the line.
func validateHostname(v cty.Value) error {
	s := v.AsString()
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("%q is not a hostname: it has leading or trailing white space (trimspace() removes it)", s)
	}
	if len(s) == 0 || len(s) > 253 {
		return fmt.Errorf("%q is not a hostname: it must be 1 to 253 characters long", s)
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 {
			return fmt.Errorf("%q is not a hostname: each dot-separated label must be 1 to 63 characters long", s)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a hostname: a label may not start or end with '-'", s)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a hostname: use only letters, digits, '-' and dots between labels", s)
			}
		}
	}
	return nil
}
