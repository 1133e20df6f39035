package container

import (
	"errors"
	"fmt"

	"github.com/moby/profiles/seccomp"
	libseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// errNoSeccomp is returned for every container by a berth built without
// seccomp support: libcontainer would refuse the profile later, when the
// container starts, with a less helpful message. Failing is safer than
// running containers without the filter Docker users expect.
var errNoSeccomp = errors.New("berth was built without seccomp support and cannot apply Docker's default seccomp profile: build it with -tags seccomp (cgo and libseccomp-dev), as the Makefile does")

// defaultSeccomp is Docker's default seccomp profile (the one `docker run`
// applies) for the process of s, whose capabilities must already be set:
// the profile allows the syscalls of a capability, such as mount or
// unshare for CAP_SYS_ADMIN, only to a container that has it. Other
// syscalls outside the profile fail with EPERM.
func defaultSeccomp(s *specs.Spec) (*specs.LinuxSeccomp, error) {
	if !libseccomp.Enabled {
		return nil, errNoSeccomp
	}
	p, err := seccomp.GetDefaultProfile(s)
	if err != nil {
		return nil, fmt.Errorf("default seccomp profile: %w", err)
	}
	return p, nil
}
