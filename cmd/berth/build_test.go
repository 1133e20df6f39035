package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cli runs a berth command as it is typed (no -dir added) and returns its
// exit code and output.
func (h *host) cli(args ...string) (int, string) {
	var out bytes.Buffer
	c := &CLI{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, Cwd: h.dir}
	return c.Run(context.Background(), args), out.String()
}

func (h *host) mustCLI(args ...string) string {
	h.t.Helper()
	code, out := h.cli(args...)
	if code != 0 {
		h.t.Fatalf("berth %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// TestBuildAndImageVerbs: berth build from a locally built base, an image
// block with a build that plans no changes once built, and the image
// verbs around them.
func TestBuildAndImageVerbs(t *testing.T) {
	h := newHost(t, "bld")
	h.write("base.Dockerfile", "FROM scratch\nCOPY rootfs/ /\nCMD [\"sh\"]\n")
	out := h.mustCLI("build", "--progress", "plain", "-t", "e2e/base:1", "-f", "base.Dockerfile", ".")
	for _, want := range []string{"Step 1/3 : FROM scratch", "Step 2/3 : COPY rootfs/ /", "Successfully tagged e2e/base:1"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	if err := os.MkdirAll(filepath.Join(h.dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.write("app/Dockerfile", "FROM e2e/base:1\nARG GREETING\nWORKDIR /srv\nCOPY page.txt .\nRUN echo \"$GREETING\" > greeting\nCMD [\"sh\", \"-c\", \"cat /srv/greeting /srv/page.txt; sleep 1000\"]\n")
	h.write("app/page.txt", "a page\n")
	h.write("main.hcl", `
image "app" {
  build {
    context = "./app"
    args    = { GREETING = "hello from a build block" }
  }
}

container "app" {
  image        = image.app.ref
  stop_timeout = "1s"
}
`)
	plan := h.must("plan", "-no-color")
	if !strings.Contains(plan, "(known after apply)") {
		t.Errorf("a plan before the first build:\n%s", plan)
	}
	h.must("apply", "-auto-approve", "-no-color")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, logs := h.cli("logs", "bld-app")
		if strings.Contains(logs, "hello from a build block") && strings.Contains(logs, "a page") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the built image's container printed %q", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if plan := h.must("plan", "-no-color"); !strings.Contains(plan, "No changes") {
		t.Errorf("a plan after the build, nothing changed:\n%s", plan)
	}
	// A changed file in the context: the plan says so before anything
	// runs, and puts it back: no changes again.
	h.write("app/page.txt", "another page\n")
	if code, plan := h.berth("plan", "-no-color", "-detailed-exitcode"); code != 2 || !strings.Contains(plan, "image.app must be replaced: build inputs changed") {
		t.Errorf("a plan after a context change: exit %d\n%s", code, plan)
	}
	h.write("app/page.txt", "a page\n")
	if plan := h.must("plan", "-no-color"); !strings.Contains(plan, "No changes") {
		t.Errorf("a plan after the change was undone:\n%s", plan)
	}
	// The same build from the CLI: every step from the cache, as JSON.
	out = h.mustCLI("build", "--json", "--build-arg", "GREETING=hello from a build block", "-t", "e2e/app:1", "app")
	cached := strings.Count(out, `"kind":"cached"`)
	var result struct {
		Type   string
		Cached int
		Steps  int
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &result); err != nil || result.Type != "result" || result.Cached != 4 || cached != 4 {
		t.Errorf("rebuild from the CLI: %d cached events, result %+v (%v):\n%s", cached, result, err, out)
	}

	ls := h.mustCLI("image", "ls")
	for _, want := range []string{"e2e/base:1", "e2e/app:1", "bld/app ", "bld/image.app"} {
		if !strings.Contains(ls, want) {
			t.Errorf("image ls lacks %q:\n%s", want, ls)
		}
	}
	if hist := h.mustCLI("image", "history", "e2e/app:1"); !strings.Contains(hist, "RUN echo") || !strings.Contains(hist, "COPY rootfs/ /") {
		t.Errorf("history:\n%s", hist)
	}
	// The project's image and the image its container runs are refused.
	if code, out := h.cli("image", "rm", "bld/app"); code == 0 || !strings.Contains(out, "belongs to bld/image.app") {
		t.Errorf("image rm of the project's image: exit %d\n%s", code, out)
	}
	// e2e/app:1 is the project's image under another name (the CLI's
	// build came from the same cache): removing it only untags it.
	if out := h.mustCLI("image", "rm", "e2e/app:1"); !strings.Contains(out, "Untagged: e2e/app:1") || strings.Contains(out, "Deleted") {
		t.Errorf("image rm of a second name: %s", out)
	}
	// save, rm, load: the same digest comes back.
	h.mustCLI("image", "tag", "e2e/base:1", "e2e/copy:1")
	before := h.mustCLI("image", "inspect", "e2e/copy:1")
	archive := filepath.Join(t.TempDir(), "copy.tar")
	h.mustCLI("image", "save", "-o", archive, "e2e/copy:1")
	h.mustCLI("image", "rm", "e2e/copy:1")
	if out := h.mustCLI("image", "load", "-i", archive); !strings.Contains(out, "Loaded image: e2e/copy:1") {
		t.Errorf("load: %s", out)
	}
	if after := h.mustCLI("image", "inspect", "e2e/copy:1"); digestOf(after) != digestOf(before) || digestOf(before) == "" {
		t.Errorf("digest before save %q, after load %q", digestOf(before), digestOf(after))
	}
	// An image a container runs is not removed, and the error names it.
	h.mustCLI("run", "-d", "--name", "bld-user", "e2e/copy:1", "sleep", "1000")
	// (e2e/copy:1 is e2e/base:1 under another name: it may go.)
	h.mustCLI("image", "rm", "e2e/copy:1")
	if code, out := h.cli("image", "rm", "e2e/base:1"); code == 0 || !strings.Contains(out, "used by container bld-user") {
		t.Errorf("image rm of a used image: exit %d\n%s", code, out)
	}
	h.mustCLI("image", "prune", "-a", "-f")
	if ls := h.mustCLI("image", "ls"); !strings.Contains(ls, "e2e/base:1") {
		t.Errorf("prune -a removed an image a container runs:\n%s", ls)
	}
	h.mustCLI("rm", "-f", "bld-user")
	if df := h.mustCLI("system", "df"); !strings.Contains(df, "Build Cache") || !strings.Contains(df, "Containers") {
		t.Errorf("system df:\n%s", df)
	}
	// prune -a keeps the project's image, the used one and what their
	// build needs: the project still plans no changes.
	h.mustCLI("image", "prune", "-a", "-f")
	ls = h.mustCLI("image", "ls")
	if !strings.Contains(ls, "bld/app") || strings.Contains(ls, "e2e/copy:1") || strings.Contains(ls, "e2e/base:1") {
		t.Errorf("after prune -a:\n%s", ls)
	}
	if plan := h.must("plan", "-no-color"); !strings.Contains(plan, "No changes") {
		t.Errorf("a plan after prune -a:\n%s", plan)
	}
}

func digestOf(inspect string) string {
	var d []struct {
		Digest string `json:"digest"`
	}
	if json.Unmarshal([]byte(inspect), &d) != nil || len(d) != 1 {
		return ""
	}
	return d[0].Digest
}

// TestImageLoadGarbageFromStdin: an error names standard input, not the
// temporary copy of it.
func TestImageLoadGarbageFromStdin(t *testing.T) {
	h := newHost(t, "ldg")
	code, out := h.berth("image", "load")
	if code == 0 || !strings.Contains(out, "stdin") || strings.Contains(out, "berth-load-") {
		t.Errorf("image load < empty = %d:\n%s\nwant an error naming stdin", code, out)
	}
}
