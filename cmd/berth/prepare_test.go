package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailedRebuildKeepsTheService: an image whose new build fails is
// found out before anything is deleted — the running container and its
// image stay, and the state says so.
func TestFailedRebuildKeepsTheService(t *testing.T) {
	h := newHost(t, "prep")
	h.write("base.Dockerfile", "FROM scratch\nCOPY rootfs/ /\nCMD [\"sh\"]\n")
	h.mustCLI("build", "-q", "-t", "e2e/prepbase:1", "-f", "base.Dockerfile", ".")
	if err := os.MkdirAll(filepath.Join(h.dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.write("app/Dockerfile", "FROM e2e/prepbase:1\nRUN echo one > /v\nCMD [\"sleep\", \"1000\"]\n")
	h.write("main.hcl", `
image "app" {
  build {
    context = "./app"
  }
}

container "app" {
  image       = image.app.ref
  stop_signal = "SIGKILL"
}
`)
	h.must("apply", "-auto-approve", "-no-color")
	t.Cleanup(func() { h.berth("destroy", "-auto-approve") })

	h.write("app/Dockerfile", "FROM e2e/prepbase:1\nRUN echo two > /v && exit 7\nCMD [\"sleep\", \"1000\"]\n")
	code, out := h.berth("apply", "-auto-approve", "-no-color")
	if code == 0 || !strings.Contains(out, "prepare failed, so nothing was changed") {
		t.Fatalf("apply of a failing build: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "Destroying") {
		t.Errorf("something was destroyed before the build failed:\n%s", out)
	}
	if got := h.mustCLI("exec", "prep-app", "cat", "/v"); got != "one\n" {
		t.Errorf("the running container holds %q, want the old image's one", got)
	}
	// Fixed, the next apply replaces both.
	h.write("app/Dockerfile", "FROM e2e/prepbase:1\nRUN echo two > /v\nCMD [\"sleep\", \"1000\"]\n")
	h.must("apply", "-auto-approve", "-no-color")
	if got := h.mustCLI("exec", "prep-app", "cat", "/v"); got != "two\n" {
		t.Errorf("after the fix the container holds %q, want two", got)
	}
}
