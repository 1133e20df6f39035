// Package testutil holds what berth's integration tests share: the checks
// that a test may touch the kernel, a busybox root filesystem, and the
// location of the CNI plugins. Only tests import it.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// RequireRoot skips a test that needs root (namespaces, mounts, cgroups).
// CI runs as root, so there these tests always run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: namespaces, mounts and cgroups")
	}
}

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CNIPath is the directory of the CNI plugins: $BERTH_CNI_PATH, or bin/cni
// as `make cni` builds it. The test fails when the plugins are missing,
// since `make test` builds them first.
func CNIPath(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("BERTH_CNI_PATH")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "bin", "cni")
	}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap", "firewall"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("CNI plugin %s missing in %s: run `make cni` (make test does it)", p, dir)
		}
	}
	return dir
}

// Busybox is the path of a static busybox (Debian's busybox-static).
func Busybox(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("busybox not found: apt-get install busybox-static (make deps does it)")
	return ""
}

// BusyboxRootfs makes a minimal root filesystem under a temporary directory:
// busybox with its applets linked in /bin, /etc/passwd and /etc/group with
// root and nobody, and empty /proc, /sys, /dev, /tmp. It returns its path.
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	bb := Busybox(t)
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root", "www"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		_ = os.Symlink("busybox", filepath.Join(root, "bin", applet))
	}
	files := map[string]string{
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":      "root:x:0:\nnogroup:x:65534:\n",
		"www/index.html": "hello from busybox\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var monitorOnce struct {
	sync.Once
	path string
	err  error
}

// Monitor is the path of a berth-monitor binary for the containers tests
// start: $BERTH_MONITOR when set, or bin/berth-monitor built from this tree
// once per test process, as make builds it (the build cache makes it
// quick; go build renames the result into place, so test processes
// building it side by side do not disturb each other's monitors).
func Monitor(t testing.TB) string {
	t.Helper()
	path, err := BuildMonitor()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// BuildMonitor is Monitor for TestMain, which has no testing.TB: it also
// sets $BERTH_MONITOR so that berth processes a test starts find it.
func BuildMonitor() (string, error) {
	monitorOnce.Do(func() {
		if p := os.Getenv("BERTH_MONITOR"); p != "" {
			monitorOnce.path = p
			return
		}
		path := filepath.Join(RepoRoot(), "bin", "berth-monitor")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/berth-monitor")
		cmd.Dir = RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			monitorOnce.err = fmt.Errorf("building berth-monitor: %v\n%s", err, out)
			return
		}
		monitorOnce.path = path
		os.Setenv("BERTH_MONITOR", path)
	})
	return monitorOnce.path, monitorOnce.err
}
