package main

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// loopbackRegistry serves an in-process registry on 127.0.0.1 and returns
// its host:port; damage, if set, may change a blob on its way out.
func loopbackRegistry(t *testing.T, damage func(path string, body []byte) []byte) string {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if damage == nil || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		w.Write(damage(r.URL.Path, rec.Body.Bytes()))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

var digestRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// TestPushPullLockRun: an image built here is pushed to a loopback
// registry, pulled by another host with an empty store and run there. Its
// tag is pinned in berth.lock.hcl at the first plan; when the tag moves,
// plans stay the same until berth lock -update, after which the plan
// replaces the image and its container because the image digest changed.
func TestPushPullLockRun(t *testing.T) {
	reg := loopbackRegistry(t, nil)
	src := newHost(t, "pushsrc")
	src.write("main.hcl", "image \"bb\" {\n  rootfs = \"./rootfs\"\n}\n")
	src.must("apply", "-auto-approve")
	out := src.must("image", "push", "pushsrc/bb", reg+"/team/bb:stable")
	d1 := digestRE.FindString(out)
	if d1 == "" || !strings.Contains(out, "Pushed pushsrc/bb to "+reg+"/team/bb:stable") {
		t.Fatalf("push said:\n%s", out)
	}

	// A second host: its own, empty state and image store.
	h := newHost(t, "pulled")
	h.write("main.hcl", fmt.Sprintf(`
image "app" {
  pull = %q
}

container "app" {
  image        = image.app.ref
  command      = ["sh", "-c", "echo pulled-and-running; sleep 3600"]
  stop_timeout = "1s"
}
`, reg+"/team/bb:stable"))
	out = h.must("plan")
	if !strings.Contains(out, "Pinned "+reg+"/team/bb:stable to "+d1+" in berth.lock.hcl.") || !strings.Contains(out, `repo_digest = "`+d1+`"`) {
		t.Fatalf("first plan does not pin the tag to %s:\n%s", d1, out)
	}
	lock, err := os.ReadFile(filepath.Join(h.dir, "berth.lock.hcl"))
	if err != nil || !strings.Contains(string(lock), fmt.Sprintf("image %q {\n  digest = %q\n}", reg+"/team/bb:stable", d1)) {
		t.Fatalf("lock file (%v):\n%s", err, lock)
	}
	h.must("apply", "-auto-approve")
	var logs string
	for range 50 {
		if logs = h.must("logs", "container.app"); strings.Contains(logs, "pulled-and-running") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(logs, "pulled-and-running") {
		t.Fatalf("the pulled image's container did not run; logs:\n%s", logs)
	}

	// The tag moves upstream. The lock holds: nothing changes.
	moved, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(reg + "/team/bb:stable")
	if err := remote.Write(ref, moved); err != nil {
		t.Fatal(err)
	}
	d2, _ := moved.Digest()
	if code, out := h.berth("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after the tag moved: exit %d, want 0 (pinned)\n%s", code, out)
	}
	if out := h.must("lock"); !strings.Contains(out, "berth.lock.hcl is up to date: 1 references pinned.") {
		t.Errorf("lock without -update:\n%s", out)
	}
	out = h.must("lock", "-update", "image.app")
	if !strings.Contains(out, fmt.Sprintf("Updated %s/team/bb:stable: %s -> %s.", reg, d1, d2)) {
		t.Fatalf("lock -update:\n%s", out)
	}
	code, out := h.berth("plan", "-detailed-exitcode", "-no-color")
	if code != 2 || !strings.Contains(out, "# image.app must be replaced: image digest changed") ||
		!strings.Contains(out, "# container.app must be replaced") || !strings.Contains(out, fmt.Sprintf("~ repo_digest = %q -> %q", d1, d2.String())) {
		t.Fatalf("plan after lock -update: exit %d, want 2 and the image digest change\n%s", code, out)
	}
	if code, out := h.berth("lock", "-update", "image.nothing"); code == 0 || !strings.Contains(out, "neither an image reference") {
		t.Errorf("lock -update of an unknown name: exit %d\n%s", code, out)
	}
}

// storeTree lists the files of a host's image store with their sizes.
func storeTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(os.Getenv("BERTH_STATE_DIR"), "images")
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || strings.HasSuffix(p, ".lock") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		lines = append(lines, fmt.Sprintf("%s %d", rel, map[bool]int64{true: 0, false: fi.Size()}[d.IsDir()]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestImagePullCommand: berth image pull in a pipe prints a line per blob
// started and finished, -json prints JSON lines; a registry serving a
// corrupted layer fails the pull with its digest named and leaves the
// store as it was.
func TestImagePullCommand(t *testing.T) {
	h := newHost(t, "imgpull")
	var corrupt string
	reg := loopbackRegistry(t, func(path string, body []byte) []byte {
		if corrupt != "" && strings.HasSuffix(path, corrupt) {
			body[len(body)/3] ^= 0x55
		}
		return body
	})
	img, err := random.Image(200<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"good", "bad"} {
		ref, _ := name.ParseReference(reg + "/rnd:" + tag)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	layers, _ := img.Layers()
	bad, _ := layers[2].Digest()

	corrupt = bad.String()
	if code, out := h.berth("image", "version-of-nothing"); code == 0 || !strings.Contains(out, "unknown command") {
		t.Errorf("unknown image command: exit %d\n%s", code, out)
	}
	h.must("image", "push", "-h") // usage, exit 0
	// This also makes the store's layout, before the listing.
	if code, out := h.berth("image", "pull", "-json", reg+"/rnd:missing"); code == 0 || !strings.Contains(out, `"type":"error"`) {
		t.Errorf("pull of a missing tag: exit %d\n%s", code, out)
	}
	before := storeTree(t)
	code, out := h.berth("image", "pull", reg+"/rnd:bad")
	if code == 0 || !strings.Contains(out, "layer "+bad.String()) || !strings.Contains(out, "nothing of it was stored") {
		t.Fatalf("pull of a corrupted layer: exit %d\n%s", code, out)
	}
	if after := storeTree(t); after != before {
		t.Errorf("a failed pull changed the store:\n--- before\n%s\n--- after\n%s", before, after)
	}

	corrupt = ""
	out = h.must("image", "pull", reg+"/rnd:good")
	for _, want := range []string{"pulling layer sha256:", "pulled layer sha256:", "Pulled " + reg + "/rnd:good as " + reg + "/rnd:good", "4 of 4 blobs downloaded"} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	out = h.must("image", "pull", "-json", "-name", "copy", reg+"/rnd:good")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last struct {
		Type   string `json:"type"`
		Name   string `json:"name"`
		Reused int    `json:"reused"`
	}
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
	}
	if last.Type != "pulled" || last.Name != "copy:latest" || last.Reused != 4 {
		t.Errorf("last JSON line %+v, want pulled as copy:latest with every blob reused", last)
	}
}
