package container

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	libseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/internal/testutil"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// seccompConfig is the seccomp filter buildConfig gives a container with
// the capabilities cap_add and cap_drop make.
func seccompConfig(t *testing.T, capAdd, capDrop []string) *configs.Seccomp {
	t.Helper()
	cfg, _, err := buildConfig(buildInput{
		id:         "seccomp",
		spec:       &resource.ContainerSpec{Command: []string{"true"}, CapAdd: capAdd, CapDrop: capDrop},
		image:      &driver.ImageConfig{},
		rootfs:     testutil.BusyboxRootfs(t),
		cgroupPath: "/berth-test/seccomp",
	})
	if !libseccomp.Enabled {
		if !errors.Is(err, errNoSeccomp) {
			t.Fatalf("built without -tags seccomp: err = %v, want %v", err, errNoSeccomp)
		}
		t.Skip("built without -tags seccomp: containers are refused, as checked")
	}
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Seccomp == nil {
		t.Fatal("no seccomp filter in the container's configuration")
	}
	return cfg.Seccomp
}

// allows tells whether the filter lets syscall name through, for some
// arguments at least.
func allows(s *configs.Seccomp, name string) bool {
	return slices.ContainsFunc(s.Syscalls, func(c *configs.Syscall) bool {
		return c.Name == name && c.Action == configs.Allow
	})
}

func TestDefaultSeccompProfile(t *testing.T) {
	s := seccompConfig(t, nil, nil)
	if s.DefaultAction != configs.Errno || s.DefaultErrnoRet == nil || *s.DefaultErrnoRet != 1 {
		t.Errorf("default action %v (errno %v), want EPERM as Docker's", s.DefaultAction, s.DefaultErrnoRet)
	}
	for _, name := range []string{"read", "write", "execve", "clone", "socket"} {
		if !allows(s, name) {
			t.Errorf("%s is not allowed", name)
		}
	}
	// Docker's default capabilities exclude CAP_SYS_ADMIN and
	// CAP_SYS_MODULE: their syscalls stay blocked.
	for _, name := range []string{"unshare", "mount", "setns", "init_module", "kexec_load"} {
		if allows(s, name) {
			t.Errorf("%s is allowed without the capability it needs", name)
		}
	}
	// The profile follows the capabilities, as Docker's does.
	s = seccompConfig(t, []string{"SYS_ADMIN"}, nil)
	for _, name := range []string{"unshare", "mount", "setns"} {
		if !allows(s, name) {
			t.Errorf("%s is not allowed with CAP_SYS_ADMIN", name)
		}
	}
}

// TestSeccompInContainer runs unshare(CLONE_NEWUSER), which needs no
// capability but which Docker's profile allows only with CAP_SYS_ADMIN:
// it fails with EPERM in a default container and works with cap_add
// SYS_ADMIN, so the EPERM comes from the filter. /proc/self/status shows
// the filter (mode 2).
func TestSeccompInContainer(t *testing.T) {
	for _, tt := range []struct {
		name   string
		capAdd cty.Value
		want   string
	}{
		{"default", strs(), "Seccomp:\t2\nunshare failed\n"},
		{"cap_add SYS_ADMIN", strs("SYS_ADMIN"), "Seccomp:\t2\nunshare ok\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			addr, v := e.create(t, container(uniqueName("seccomp"), []string{"sh", "-c",
				"grep '^Seccomp:' /proc/self/status; unshare -U true && echo unshare ok || echo unshare failed"},
				map[string]cty.Value{"cap_add": tt.capAdd}))
			e.waitExit(t, addr, v)
			stderr := e.output(t, addr.Name, "stderr")
			if out := e.stdout(t, v); out != tt.want {
				t.Errorf("stdout = %q, want %q; stderr: %s", out, tt.want, stderr)
			}
			if strings.HasSuffix(tt.want, "failed\n") && !strings.Contains(string(stderr), "Operation not permitted") {
				t.Errorf("stderr = %q, want EPERM (Operation not permitted)", stderr)
			}
		})
	}
}
