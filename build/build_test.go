package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/seed-e88ffcd2/berth/driver"
	"github.com/seed-e88ffcd2/berth/driver/container"
	"github.com/seed-e88ffcd2/berth/driver/image"
	"github.com/seed-e88ffcd2/berth/internal/testutil"
	"github.com/seed-e88ffcd2/berth/resource"
)

// libcontainer's mount-source goroutine may leave its thread in a
// container's mount namespace; the main goroutine keeps the main thread.
func init() { runtime.LockOSThread() }

// TestMain lets the test binary serve as the RUN steps' init.
func TestMain(m *testing.M) {
	container.Init()
	os.Exit(m.Run())
}

type env struct {
	root   string
	store  *image.Store
	runner *container.Driver
	b      *Builder
}

func newEnv(t testing.TB) *env {
	t.Helper()
	testutil.RequireRoot(t)
	root := t.TempDir()
	store, err := image.New(image.Config{Root: filepath.Join(root, "images")})
	if err != nil {
		t.Fatal(err)
	}
	d, err := container.New(container.Config{
		StateDir:     filepath.Join(root, "containers"),
		RunDir:       filepath.Join(root, "run"),
		CgroupParent: "/berth-test-build-" + unique(),
	}, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{root: root, store: store, runner: d, b: New(store, d)}
}

func unique() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// project writes a build context: files by relative path.
func project(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// baseImage builds a busybox image FROM scratch, tagged name: the
// locally built base of the tests.
func (e *env) baseImage(t testing.TB, name string) *Result {
	t.Helper()
	dir := project(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY rootfs/ /\nCMD [\"sh\"]\n"})
	if out, err := exec.Command("cp", "-a", testutil.BusyboxRootfs(t), filepath.Join(dir, "rootfs")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	res, err := e.b.Run(context.Background(), Options{Context: dir, Tags: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// run runs a command in a one-shot container of the image and returns its
// output.
func (e *env) run(t testing.TB, ref string, args ...string) string {
	t.Helper()
	img, err := e.store.Lookup(ref)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := e.store.LayerDirs(img)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c := img.Config.Config
	code, err := e.runner.RunOneShot(context.Background(), container.OneShot{
		Dir: t.TempDir(), Layers: layers, Args: args, Stdout: &out, Stderr: &out,
		Image: driver.ImageConfig{Env: c.Env, WorkingDir: c.WorkingDir, User: c.User},
	})
	if err != nil || code != 0 {
		t.Fatalf("%v: exit %d, %v: %s", args, code, err, out.String())
	}
	return out.String()
}

const appDockerfile = `# a two-stage build on a locally built base
ARG BASE
FROM ${BASE} AS builder
WORKDIR /src
COPY hello.txt .
RUN echo built > out.txt && cat hello.txt >> out.txt

FROM ${BASE}
ARG FLAVOUR=plain
ENV GREETING=hi APP_HOME=/app
WORKDIR $APP_HOME
COPY --from=builder /src/out.txt ./out.txt
COPY files/ ./files/
RUN echo "$GREETING $FLAVOUR" > run.txt && rm /etc/group
USER nobody
EXPOSE 8080 53/udp
LABEL org.example.kind=test
VOLUME /data
HEALTHCHECK --interval=5s CMD test -f /app/run.txt
CMD ["cat", "/app/out.txt"]
`

func TestBuildTwoStagesAndCache(t *testing.T) {
	e := newEnv(t)
	base := "test/base-" + unique()
	e.baseImage(t, base)
	dir := project(t, map[string]string{
		"Dockerfile":       appDockerfile,
		"hello.txt":        "hello from the context\n",
		"files/a.txt":      "a\n",
		"files/secret.key": "do not ship\n",
		"files/sub/b.txt":  "b\n",
		".dockerignore":    "files/*.key\n",
	})
	var events []Event
	opts := Options{Context: dir, Tags: []string{"test/app:1"}, Args: map[string]string{"BASE": base, "FLAVOUR": "spicy"},
		Progress: func(ev Event) { events = append(events, ev) }}
	first, err := e.b.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if first.Steps != 17 || first.Cached != 0 {
		t.Errorf("first build: %d steps, %d cached; want 17 and 0", first.Steps, first.Cached)
	}
	img, err := e.store.Lookup("test/app:1")
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config.Config
	switch {
	case !slices.Contains(c.Env, "GREETING=hi") || !slices.Contains(c.Env, "APP_HOME=/app"):
		t.Errorf("env %v", c.Env)
	case c.WorkingDir != "/app" || c.User != "nobody":
		t.Errorf("workdir %q user %q", c.WorkingDir, c.User)
	case !slices.Equal(c.Cmd, []string{"cat", "/app/out.txt"}):
		t.Errorf("cmd %v", c.Cmd)
	case len(c.ExposedPorts) != 2 || c.Labels["org.example.kind"] != "test" || len(c.Volumes) != 1:
		t.Errorf("ports %v labels %v volumes %v", c.ExposedPorts, c.Labels, c.Volumes)
	case c.Healthcheck == nil || c.Healthcheck.Interval.Seconds() != 5:
		t.Errorf("healthcheck %+v", c.Healthcheck)
	}
	// One history entry per step of the final stage on top of the base's.
	var created []string
	for _, h := range img.Config.History {
		created = append(created, h.CreatedBy)
	}
	if !slices.Contains(created, `RUN echo "$GREETING $FLAVOUR" > run.txt && rm /etc/group`) {
		t.Errorf("history %q", created)
	}

	out := e.run(t, "test/app:1", "sh", "-c", "cat out.txt run.txt; ls -R files; test -e /etc/group || echo no-group; id -u")
	for _, want := range []string{"built\nhello from the context\n", "hi spicy\n", "a.txt", "b.txt", "no-group", "65534"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret.key") {
		t.Errorf(".dockerignore'd file in the image:\n%s", out)
	}

	// No change: every step but the FROMs and the ARG comes from the cache.
	events = nil
	second, err := e.b.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if second.Digest != first.Digest || second.Cached != 14 {
		t.Errorf("rebuild: digest %s (first %s), %d of %d steps cached; want the same digest and 14", second.Digest, first.Digest, second.Cached, second.Steps)
	}
	for _, ev := range events {
		if ev.Kind == EventOutput {
			t.Errorf("a cached rebuild ran something: %q", ev.Output)
		}
	}
	// A cache-only build (plan time) agrees; a changed input is not cached.
	only := opts
	only.CacheOnly, only.Tags = true, nil
	if res, err := e.b.Run(context.Background(), only); err != nil || res.Digest != first.Digest {
		t.Errorf("cache-only build: %v, %v", res, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "files", "a.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Run(context.Background(), only); !errors.Is(err, image.ErrNotCached) {
		t.Errorf("cache-only build of a changed context: %v, want ErrNotCached", err)
	}
	// A file only .dockerignore'd changed: still cached.
	if err := os.WriteFile(filepath.Join(dir, "files", "a.txt"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "files", "secret.key"), []byte("rotated\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := e.b.Run(context.Background(), only); err != nil || res.Digest != first.Digest {
		t.Errorf("cache-only build after an ignored change: %v, %v", res, err)
	}
}

func TestBuildErrors(t *testing.T) {
	e := newEnv(t)
	base := "test/base-" + unique()
	e.baseImage(t, base)
	tests := []struct {
		name, dockerfile, want string
	}{
		{"unknown instruction", "FROM " + base + "\nFROBNICATE x\n", "Dockerfile:2: unknown instruction: FROBNICATE"},
		{"onbuild", "FROM " + base + "\n\nONBUILD RUN true\n", "Dockerfile:3: ONBUILD: ONBUILD is not supported"},
		{"run mount", "FROM " + base + "\nRUN --mount=type=cache,target=/c true\n", "Dockerfile:2: RUN: RUN --mount is not supported"},
		{"failing run", "FROM " + base + "\nRUN echo oops >&2; exit 3\n", "returned a non-zero code: 3; its last output:\noops"},
		{"missing source", "FROM " + base + "\nCOPY nothere /x\n", "nothere: not found"},
		{"url", "FROM " + base + "\nADD https://example.com/x /x\n", "is a URL"},
		{"no network", "FROM " + base + "\nRUN wget -q -T 2 http://1.1.1.1/\n", "returned a non-zero code"},
		{"host network without consent", "FROM " + base + "\nRUN --network=host true\n", "RUN --network=host needs the builder's consent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t, map[string]string{"Dockerfile": tt.dockerfile})
			_, err := e.b.Run(context.Background(), Options{Context: dir})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestDockerSaveFixtureRuns: an archive docker save wrote loads and its
// program runs in a container.
func TestDockerSaveFixtureRuns(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the fixture's program is x86-64")
	}
	e := newEnv(t)
	for _, f := range []string{"docker-save-legacy.tar", "docker-save-25.tar"} {
		if _, err := e.store.Load(context.Background(), filepath.Join("..", "driver", "image", "testdata", f), image.LoadOptions{Name: ""}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if out := e.run(t, "fixture/hello:2", "/hello"); out != "hello from a docker save fixture\n" {
			t.Errorf("%s: /hello printed %q", f, out)
		}
	}
	// And it is a base to build on.
	dir := project(t, map[string]string{"Dockerfile": "FROM fixture/hello:2\nCOPY note /etc/note\n", "note": "on top\n"})
	if _, err := e.b.Run(context.Background(), Options{Context: dir, Tags: []string{"fixture/on-top"}}); err != nil {
		t.Fatal(err)
	}
	if out := e.run(t, "fixture/on-top", "/hello"); !strings.Contains(out, "hello from a docker save fixture") {
		t.Errorf("on-top: %q", out)
	}
}

// TestImageBuildBlock: an image with a build block plans "known after
// apply" until it is built, is built by Create, and then plans its digest
// from the cache, without running anything.
func TestImageBuildBlock(t *testing.T) {
	e := newEnv(t)
	base := "test/base-" + unique()
	e.baseImage(t, base)
	e.store.SetBuilder(e.b)
	dir := project(t, map[string]string{"Dockerfile": "FROM " + base + "\nARG MSG\nRUN echo $MSG > /msg\n"})
	vals := map[string]cty.Value{}
	for n, at := range resource.ImageSchema.ImpliedType().AttributeTypes() {
		vals[n] = cty.NullVal(at)
	}
	vals["name"] = cty.StringVal("test/block-" + unique())
	bt := resource.ImageSchema.Blocks["build"].Schema.ImpliedType()
	bv := map[string]cty.Value{}
	for n, at := range bt.AttributeTypes() {
		bv[n] = cty.NullVal(at)
	}
	bv["context"] = cty.StringVal(dir)
	bv["args"] = cty.MapVal(map[string]cty.Value{"MSG": cty.StringVal("from hcl")})
	vals["build"] = cty.ObjectVal(bv)
	for _, a := range []string{"id", "digest", "ref", "repo_digest"} {
		vals[a] = cty.UnknownVal(cty.String)
	}
	desired := cty.ObjectVal(vals)
	addr := resource.Addr{Kind: resource.KindImage, Name: "app"}
	ctx := context.Background()
	planned, err := e.store.Preview(ctx, addr, cty.NullVal(desired.Type()), desired)
	if err != nil {
		t.Fatal(err)
	}
	if planned.GetAttr("digest").IsKnown() {
		t.Errorf("an unbuilt image planned a digest: %#v", planned.GetAttr("digest"))
	}
	created, err := e.store.Create(ctx, addr, desired)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.store.Preview(ctx, addr, created, desired)
	if err != nil {
		t.Fatal(err)
	}
	if !again.GetAttr("digest").RawEquals(created.GetAttr("digest")) {
		t.Errorf("after the build the plan says %#v, the image is %#v", again.GetAttr("digest"), created.GetAttr("digest"))
	}
	ref := created.GetAttr("ref").AsString()
	if out := e.run(t, ref, "cat", "/msg"); out != "from hcl\n" {
		t.Errorf("/msg = %q", out)
	}
	if obs, err := e.store.Observe(ctx, addr, created); err != nil || obs.Health != resource.Healthy {
		t.Errorf("observe: %+v, %v", obs, err)
	}
	// A changed argument: the digest is known after apply, the build key
	// now, and it differs, so the plan shows the change.
	bv["args"] = cty.MapVal(map[string]cty.Value{"MSG": cty.StringVal("changed")})
	vals["build"] = cty.ObjectVal(bv)
	changed, err := e.store.Preview(ctx, addr, created, cty.ObjectVal(vals))
	if err != nil {
		t.Fatal(err)
	}
	key := changed.GetAttr("build_key")
	if changed.GetAttr("digest").IsKnown() || !key.IsKnown() || key.RawEquals(created.GetAttr("build_key")) {
		t.Errorf("a changed build planned digest %#v, build key %#v (built: %#v)", changed.GetAttr("digest"), key, created.GetAttr("build_key"))
	}
}

// TestRunDeletionsBecomeWhiteouts: what a RUN step deletes is deleted in
// the image: overlayfs's whiteouts and opaque directories become OCI
// whiteouts in the layer, and back into overlayfs's when unpacked.
func TestRunDeletionsBecomeWhiteouts(t *testing.T) {
	e := newEnv(t)
	base := "test/base-" + unique()
	e.baseImage(t, base)
	dir := project(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN rm /etc/group && rm -rf /www && mkdir /www && echo new > /www/new\n"})
	res, err := e.b.Run(context.Background(), Options{Context: dir, Tags: []string{"test/wh"}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := e.store.ImageByDigest(res.Digest)
	if err != nil {
		t.Fatal(err)
	}
	top := img.Manifest.Layers[len(img.Manifest.Layers)-1]
	f, err := os.Open(filepath.Join(e.root, "images", "blobs", "sha256", top.Digest.Hex))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
	}
	for _, want := range []string{"etc/.wh.group", "www/.wh..wh..opq", "www/new"} {
		if !slices.Contains(names, want) {
			t.Errorf("the RUN layer lacks %s: %v", want, names)
		}
	}
	if out := e.run(t, "test/wh", "sh", "-c", "ls /www; test -e /etc/group || echo no-group"); out != "new\nno-group\n" {
		t.Errorf("in the image: %q", out)
	}
}

// TestCopyAndAdd: --chown and --chmod, copying into a symlinked
// directory of the image, ADD unpacking a local tar, and another stage's
// files.
func TestCopyAndAdd(t *testing.T) {
	e := newEnv(t)
	base := "test/base-" + unique()
	e.baseImage(t, base)
	var tgz bytes.Buffer
	zw := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(zw)
	for _, f := range []struct{ name, body string }{{"pkg/a.txt", "a\n"}, {"pkg/b.txt", "b\n"}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o640, Size: int64(len(f.body)), Typeflag: tar.TypeReg, Uid: 7, Gid: 7}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(f.body))
	}
	_ = tw.Close()
	_ = zw.Close()
	dir := project(t, map[string]string{
		"Dockerfile": "FROM " + base + " AS one\nRUN ln -s /www /site && echo made > /made\n" +
			"COPY --chown=nobody:nogroup --chmod=600 conf.txt /site/conf.txt\n" +
			"ADD pkg.tar.gz /opt/\nCOPY *.md /docs/\n" +
			"FROM " + base + "\nCOPY --from=one /made /www/index.html /copied/\n",
		"conf.txt": "secret\n",
		"one.md":   "1\n",
		"two.md":   "2\n",
	})
	if err := os.WriteFile(filepath.Join(dir, "pkg.tar.gz"), tgz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Run(context.Background(), Options{Context: dir, Target: "one", Tags: []string{"test/one"}}); err != nil {
		t.Fatal(err)
	}
	out := e.run(t, "test/one", "sh", "-c", "stat -c '%U:%G %a' /www/conf.txt; cat /opt/pkg/a.txt; stat -c '%u %a' /opt/pkg/b.txt; ls /docs")
	if want := "nobody:nogroup 600\na\n7 640\none.md\ntwo.md\n"; out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if _, err := e.b.Run(context.Background(), Options{Context: dir, Tags: []string{"test/two"}}); err != nil {
		t.Fatal(err)
	}
	if out := e.run(t, "test/two", "sh", "-c", "cat /copied/made /copied/index.html"); out != "made\nhello from busybox\n" {
		t.Errorf("from the other stage: %q", out)
	}
}

func TestImportChanges(t *testing.T) {
	cfg, err := Changes([]string{`CMD ["sh"]`, "ENV A=1 B=2", "WORKDIR /srv", "EXPOSE 80", "USER nobody", "LABEL k=v"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Cmd, []string{"sh"}) || !slices.Equal(cfg.Env, []string{"A=1", "B=2"}) || cfg.WorkingDir != "/srv" ||
		cfg.User != "nobody" || cfg.Labels["k"] != "v" || len(cfg.ExposedPorts) != 1 {
		t.Errorf("config %+v", cfg)
	}
	if _, err := Changes([]string{"RUN true"}); err == nil {
		t.Error("RUN accepted as a change")
	}
}

// berth image prune keeps the cache entries of every stage that built a
// named image: a two-stage build rebuilds from the cache afterwards.
func TestPruneKeepsEveryStageOfANamedImage(t *testing.T) {
	e := newEnv(t)
	base := "test/base-" + unique()
	e.baseImage(t, base)
	dir := project(t, map[string]string{
		"Dockerfile":  appDockerfile,
		"hello.txt":   "hello\n",
		"files/a.txt": "a\n",
	})
	opts := Options{Context: dir, Tags: []string{"test/app:1"}, Args: map[string]string{"BASE": base}}
	first, err := e.b.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Another build whose image no name keeps: its entries go.
	other := project(t, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN echo other > /other\n"})
	if _, err := e.b.Run(context.Background(), Options{Context: other, Args: map[string]string{"BASE": base}}); err != nil {
		t.Fatal(err)
	}
	removed, err := e.store.Prune(context.Background(), image.PruneOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if removed.BuildCache != 1 {
		t.Errorf("prune dropped %d build cache entries, want 1 (the unnamed build's)", removed.BuildCache)
	}
	only := opts
	only.CacheOnly, only.Tags = true, nil
	res, err := e.b.Run(context.Background(), only)
	if err != nil || res.Digest != first.Digest || res.Cached != res.Steps-3 {
		t.Fatalf("cache-only build after prune: %+v, %v; want digest %s, every step cached", res, err, first.Digest)
	}
}

// TestBadTagFailsBeforeAnyStep: build -t 'Bad Name' fails before running.
func TestBadTagFailsBeforeAnyStep(t *testing.T) {
	e := newEnv(t)
	dir := project(t, map[string]string{"Dockerfile": "FROM scratch\nENV A=1\n"})
	steps := 0
	_, err := e.b.Run(context.Background(), Options{Context: dir, Tags: []string{"Bad Name"}, Progress: func(Event) { steps++ }})
	if err == nil || steps != 0 {
		t.Errorf("build -t 'Bad Name' = %v after %d events, want an error before any step", err, steps)
	}
}
