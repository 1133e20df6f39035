package image

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/zclconf/go-cty/cty"
)

// newRegistry serves an in-process registry on 127.0.0.1 and returns its
// host:port. wrap, if set, stands between the client and the registry.
func newRegistry(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// push writes an image or index to the registry under ref.
func push(t testing.TB, ref string, v remote.Taggable) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	switch x := v.(type) {
	case v1.Image:
		err = remote.Write(r, x)
	case v1.ImageIndex:
		err = remote.WriteIndex(r, x)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func randomImage(t testing.TB, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t testing.TB, v interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := v.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// tree lists every file under root with its size, for comparing a store
// before and after an operation that must not change it.
func tree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasSuffix(rel, ".lock") {
			return nil // lock files are created by the first operation
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		size := fi.Size()
		if d.IsDir() {
			size = 0
		}
		lines = append(lines, fmt.Sprintf("%s %d", rel, size))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestPullIntoEmptyStore(t *testing.T) {
	s := newStore(t)
	reg := newRegistry(t, nil)
	img := randomImage(t, 64<<10, 3)
	push(t, reg+"/app:1", img)

	var mu sync.Mutex
	states := map[string][]string{}
	got, err := s.Pull(ctx, reg+"/app:1", PullOptions{Progress: func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if l := states[p.Digest]; len(l) == 0 || l[len(l)-1] != p.State {
			states[p.Digest] = append(l, p.State)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := digestOf(t, img)
	if got.Digest != want.String() || got.RepoDigest != want.String() || got.Name != reg+"/app:1" {
		t.Errorf("pulled %+v, want digest and repo digest %s", got, want)
	}
	if got.Blobs != 4 || got.Reused != 0 {
		t.Errorf("blobs %d, reused %d; want 4 (config and 3 layers), 0", got.Blobs, got.Reused)
	}
	for d, l := range states {
		if strings.Join(l, ",") != "waiting,downloading,done" {
			t.Errorf("blob %s went through %v", d, l)
		}
	}
	stored, err := s.loadImage(want)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Resolve(ctx, "x@"+want.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Layers) != 3 || info.ID != stored.ID.String() {
		t.Errorf("resolved %+v", info)
	}
	if n := len(listDir(t, s.tmpDir())); n != 0 {
		t.Errorf("tmp holds %d entries after the pull", n)
	}

	// Everything is stored: a second pull downloads nothing.
	again, err := s.Pull(ctx, reg+"/app:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Reused != 4 || again.Downloaded != 0 {
		t.Errorf("second pull: %+v, want every blob reused", again)
	}
	// The record keeps the blobs through a collection.
	if err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.loadImage(want); err != nil {
		t.Errorf("after GC: %v", err)
	}
}

// TestPullSharedLayers: a layer another image already brought is not
// downloaded again, and one listed twice in a manifest is fetched once.
func TestPullSharedLayers(t *testing.T) {
	s := newStore(t)
	var blobGets atomic.Int32
	reg := newRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				blobGets.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	base := randomImage(t, 32<<10, 2)
	push(t, reg+"/base:1", base)
	extra, err := random.Layer(16<<10, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	if err != nil {
		t.Fatal(err)
	}
	derived, err := mutate.AppendLayers(base, extra, extra)
	if err != nil {
		t.Fatal(err)
	}
	push(t, reg+"/derived:1", derived)
	if _, err := s.Pull(ctx, reg+"/base:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	blobGets.Store(0)
	got, err := s.Pull(ctx, reg+"/derived:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The derived image's config and its one new layer.
	if n := blobGets.Load(); n != 2 {
		t.Errorf("%d blob downloads, want 2", n)
	}
	if got.Blobs != 4 || got.Reused != 2 {
		t.Errorf("pulled %+v, want 4 distinct blobs of which 2 reused", got)
	}
}

// TestPullMultiPlatform: an index resolves to this host's image; the
// repo digest is the index's, kept through garbage collection so a plan
// pinned to it needs no registry.
func TestPullMultiPlatform(t *testing.T) {
	s := newStore(t)
	reg := newRegistry(t, nil)
	mine, other := randomImage(t, 16<<10, 1), randomImage(t, 16<<10, 1)
	otherArch := "arm64"
	if runtime.GOARCH == "arm64" {
		otherArch = "amd64"
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: otherArch}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	push(t, reg+"/multi:1", idx)
	got, err := s.Pull(ctx, reg+"/multi:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digestOf(t, mine).String() || got.RepoDigest != digestOf(t, idx).String() {
		t.Errorf("pulled %+v, want manifest %s of index %s", got, digestOf(t, mine), digestOf(t, idx))
	}
	if err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.hasBlob(digestOf(t, idx)) {
		t.Error("GC removed the index a record pins")
	}
	if s.hasBlob(digestOf(t, other)) {
		t.Error("the other platform's manifest was stored")
	}

	// An index without this host's platform says what it has.
	only := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: otherArch}}})
	push(t, reg+"/foreign:1", only)
	_, err = s.Pull(ctx, reg+"/foreign:1", PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "has no image for linux/"+runtime.GOARCH+" (it has linux/"+otherArch+")") {
		t.Errorf("pull of a foreign index: %v", err)
	}
}

// TestPullDamagedBlobLeavesStoreUnchanged: a registry that serves a layer
// with a byte changed, or cut short, fails the pull with the digest named,
// and the store holds exactly what it held before.
func TestPullDamagedBlobLeavesStoreUnchanged(t *testing.T) {
	img := randomImage(t, 256<<10, 3)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	bad := digestOf(t, layers[1])
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		want   string
	}{
		{"corrupted", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }, "sha256"},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			reg := newRegistry(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+bad.String()) {
						h.ServeHTTP(w, r)
						return
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, r)
					body := tc.damage(rec.Body.Bytes())
					for k, v := range rec.Header() {
						if k != "Content-Length" {
							w.Header()[k] = v
						}
					}
					w.WriteHeader(rec.Code)
					w.Write(body)
				})
			})
			push(t, reg+"/app:1", img)
			before := tree(t, s.root)
			_, err := s.Pull(ctx, reg+"/app:1", PullOptions{})
			if err == nil {
				t.Fatal("a damaged blob was accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, bad.String()) || !strings.Contains(msg, "nothing of it was stored") || !strings.Contains(msg, tc.want) {
				t.Errorf("error does not name the blob and say nothing was stored: %v", err)
			}
			t.Log(msg)
			if after := tree(t, s.root); after != before {
				t.Errorf("the store changed:\n--- before\n%s\n--- after\n%s", before, after)
			}
		})
	}
}

// TestStageRefusesMismatch checks the store's own check, behind the
// registry client's: content whose digest or size is not the one asked
// for is never renamed into place.
func TestStageRefusesMismatch(t *testing.T) {
	s := newStore(t)
	st, err := s.newStage()
	if err != nil {
		t.Fatal(err)
	}
	defer st.abort()
	content := []byte("layer content")
	h, _, err := v1.SHA256(bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body []byte
		size int64
		want string
	}{
		{[]byte("other content"), int64(len(content)), "digest"},
		{content[:5], int64(len(content)), "sent 5 bytes"},
		{append(content, '!'), int64(len(content)), "sent 14 bytes"},
	} {
		err := st.put(bytes.NewReader(tc.body), h, tc.size, false, nil)
		if !errors.Is(err, errMismatch) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("put %q: %v, want a mismatch saying %q", tc.body, err, tc.want)
		}
	}
	if err := st.commit(); err != nil {
		t.Fatal(err)
	}
	if s.hasBlob(h) {
		t.Error("a refused blob was stored")
	}
	if err := st.put(bytes.NewReader(content), h, int64(len(content)), false, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.commit(); err != nil {
		t.Fatal(err)
	}
	if !s.hasBlob(h) {
		t.Error("a whole blob was not stored")
	}
}

// recordingTransport stands for the network: it records each request and
// fails it without dialling anything.
type recordingTransport struct {
	mu   sync.Mutex
	seen []string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req.URL.Scheme+"://"+req.URL.Host)
	r.mu.Unlock()
	return nil, errors.New("test transport: no network")
}

func (r *recordingTransport) requests() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.seen, " ")
}

// TestPlainHTTPOnlyWhereAllowed: berth never sends a plain-HTTP request to
// a registry that is neither loopback nor listed — go-containerregistry
// would fall back to HTTP for private addresses — and refuses it before
// the transport (which dials) sees it. Listed registries may use HTTP.
func TestPlainHTTPOnlyWhereAllowed(t *testing.T) {
	for _, tc := range []struct {
		ref       string
		insecure  []string
		wantPlain bool
	}{
		{"192.0.2.1:5000/app:1", nil, false},
		{"10.255.0.1:5000/app:1", nil, false}, // RFC 1918
		{"registry.example:5000/app:1", nil, false},
		{"192.0.2.1:5000/app:1", []string{"192.0.2.1:5000"}, true},
		{"192.0.2.1:5000/app:1", []string{"192.0.2.1"}, true},
	} {
		rt := &recordingTransport{}
		s, err := New(Config{Root: filepath.Join(t.TempDir(), "images"), Transport: rt, InsecureRegistries: tc.insecure})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Pull(context.Background(), tc.ref, PullOptions{})
		if err == nil {
			t.Fatalf("%s: pulled through a transport that fails everything", tc.ref)
		}
		plain := strings.Contains(rt.requests(), "http://")
		if plain != tc.wantPlain {
			t.Errorf("%s (insecure %v): requests %q; plain HTTP sent: %v, want %v", tc.ref, tc.insecure, rt.requests(), plain, tc.wantPlain)
		}
	}

	// The guard itself: a plain request to an address not allowed never
	// reaches the transport.
	rt := &recordingTransport{}
	guard := newRegistries(Config{Transport: rt}).transport
	req, _ := http.NewRequest(http.MethodGet, "http://192.0.2.1:5000/v2/", nil)
	_, err := guard.RoundTrip(req)
	if !errors.Is(err, ErrPlainHTTP) || !strings.Contains(err.Error(), "BERTH_INSECURE_REGISTRIES") || rt.requests() != "" {
		t.Errorf("guard: %v, transport saw %q", err, rt.requests())
	}
	for _, host := range []string{"127.0.0.1:5000", "127.8.9.10", "[::1]:5000", "localhost:5000"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/", nil)
		if _, err := guard.RoundTrip(req); errors.Is(err, ErrPlainHTTP) {
			t.Errorf("loopback %s refused: %v", host, err)
		}
	}
}

// TestPreviewAndCreatePulled: at plan time a pulled image gets its digests
// without its layers being fetched; a pin (the lock file's repo_digest)
// holds after the tag moves; Create downloads what the plan resolved.
func TestPreviewAndCreatePulled(t *testing.T) {
	s := newStore(t)
	reg := newRegistry(t, nil)
	v1img, v2img := randomImage(t, 16<<10, 2), randomImage(t, 16<<10, 2)
	push(t, reg+"/app:stable", v1img)
	val := imageVal(map[string]cty.Value{
		"name": cty.StringVal("proj/app"), "pull": cty.StringVal(reg + "/app:stable"),
		"repo_digest": cty.UnknownVal(cty.String),
	})
	null := cty.NullVal(val.Type())
	planned, err := s.Preview(ctx, addr("app"), null, val)
	if err != nil {
		t.Fatal(err)
	}
	d1 := digestOf(t, v1img).String()
	if str(planned, "digest") != d1 || str(planned, "repo_digest") != d1 || str(planned, "ref") != "proj/app@"+d1 {
		t.Errorf("preview: digest %s, repo_digest %s, ref %s; want %s", str(planned, "digest"), str(planned, "repo_digest"), str(planned, "ref"), d1)
	}
	cfgName, _ := v1img.ConfigName()
	if str(planned, "id") != cfgName.String() {
		t.Errorf("preview: id %s, want %s", str(planned, "id"), cfgName)
	}
	layers, _ := v1img.Layers()
	if s.hasBlob(digestOf(t, layers[0])) {
		t.Error("preview downloaded a layer")
	}

	// The tag moves; a value pinned to the old digest still plans it.
	push(t, reg+"/app:stable", v2img)
	pinned := imageVal(map[string]cty.Value{
		"name": cty.StringVal("proj/app"), "pull": cty.StringVal(reg + "/app:stable"),
		"repo_digest": cty.StringVal(d1),
	})
	again, err := s.Preview(ctx, addr("app"), null, pinned)
	if err != nil {
		t.Fatal(err)
	}
	if str(again, "digest") != d1 {
		t.Errorf("pinned preview gave %s, want %s", str(again, "digest"), d1)
	}
	unpinned, err := s.Preview(ctx, addr("app"), null, val)
	if err != nil {
		t.Fatal(err)
	}
	if d2 := digestOf(t, v2img).String(); str(unpinned, "repo_digest") != d2 {
		t.Errorf("unpinned preview gave %s, want the moved tag's %s", str(unpinned, "repo_digest"), d2)
	}

	created, err := s.Create(ctx, addr("app"), again)
	if err != nil {
		t.Fatal(err)
	}
	if str(created, "digest") != d1 {
		t.Errorf("created %s, want %s", str(created, "digest"), d1)
	}
	obs, err := s.Observe(ctx, addr("app"), created)
	if err != nil || obs.Health != 0 {
		t.Errorf("observe after create: %+v %v", obs, err)
	}
	info, err := s.Resolve(ctx, str(created, "ref"))
	if err != nil || len(info.Layers) != 2 {
		t.Fatalf("resolve: %+v %v", info, err)
	}

	// A plan made for one manifest refuses to create another.
	stale := resource_with(again, "digest", digestOf(t, v2img).String())
	if _, err := s.Create(ctx, addr("app"), stale); err == nil || !strings.Contains(err.Error(), "run berth plan again") {
		t.Errorf("create of a stale plan: %v", err)
	}
}

func resource_with(v cty.Value, attr, s string) cty.Value {
	m := v.AsValueMap()
	m[attr] = cty.StringVal(s)
	return cty.ObjectVal(m)
}

// TestPushStoredImage: an image built from a directory is pushed with its
// digest, and pulled back into another store.
func TestPushStoredImage(t *testing.T) {
	s := newStore(t)
	reg := newRegistry(t, nil)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	val := imageVal(map[string]cty.Value{"name": cty.StringVal("proj/web"), "rootfs": cty.StringVal(dir)})
	created, err := s.Create(ctx, addr("web"), val)
	if err != nil {
		t.Fatal(err)
	}
	var last Progress
	digest, err := s.Push(ctx, "proj/web", reg+"/web:1", func(p Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if digest != str(created, "digest") {
		t.Errorf("pushed %s, stored %s", digest, str(created, "digest"))
	}
	if last.Done != last.Size || last.Size == 0 {
		t.Errorf("last progress %+v, want the whole image", last)
	}
	r, _ := name.ParseReference(reg + "/web:1")
	desc, err := remote.Head(r)
	if err != nil || desc.Digest.String() != digest {
		t.Fatalf("registry holds %v (%v), want %s", desc, err, digest)
	}
	other := newStore(t)
	got, err := other.Pull(ctx, reg+"/web:1", PullOptions{Name: "copy"})
	if err != nil || got.Digest != digest {
		t.Fatalf("pull back: %+v %v", got, err)
	}
	if _, err := s.Push(ctx, "proj/missing", reg+"/web:2", nil); err == nil || !strings.Contains(err.Error(), "no image named") {
		t.Errorf("push of a missing image: %v", err)
	}
}

// TestPullWithDockerConfigCredentials: a registry that wants a login is
// answered with the credentials the Docker config file holds for it.
func TestPullWithDockerConfigCredentials(t *testing.T) {
	s := newStore(t)
	reg := newRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if user, pass, ok := r.BasicAuth(); !ok || user != "berth" || pass != "s3cret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "login first", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	img := randomImage(t, 8<<10, 1)
	r, _ := name.ParseReference(reg + "/private:1")
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "berth", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, reg+"/private:1", PullOptions{}); err == nil {
		t.Fatal("pulled without credentials")
	}
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("berth:s3cret"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+reg+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	got, err := s.Pull(ctx, reg+"/private:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digestOf(t, img).String() {
		t.Errorf("pulled %s", got.Digest)
	}
}

// TestPullByDigest: a reference by digest is its own pin: no tag is looked
// up, and the repo digest is the one written.
func TestPullByDigest(t *testing.T) {
	s := newStore(t)
	reg := newRegistry(t, nil)
	img := randomImage(t, 8<<10, 1)
	push(t, reg+"/app:1", img)
	d := digestOf(t, img).String()
	got, err := s.Pull(ctx, reg+"/app@"+d, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.RepoDigest != d || got.Name != reg+"/app" {
		t.Errorf("pulled %+v", got)
	}
	v := imageVal(map[string]cty.Value{"name": cty.StringVal("p/app"), "pull": cty.StringVal(reg + "/app@" + d), "repo_digest": cty.UnknownVal(cty.String)})
	planned, err := s.Preview(ctx, addr("app"), cty.NullVal(v.Type()), v)
	if err != nil || str(planned, "repo_digest") != d {
		t.Errorf("preview: %v %v", str(planned, "repo_digest"), err)
	}
}

// TestInterruptedPullLeavesStoreUnchanged: a pull cancelled half way
// through a layer removes what it staged.
func TestInterruptedPullLeavesStoreUnchanged(t *testing.T) {
	s := newStore(t)
	img := randomImage(t, 512<<10, 2)
	started := make(chan struct{})
	var once sync.Once
	reg := newRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			w.Header().Set("Content-Length", fmt.Sprint(rec.Body.Len()))
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
			w.(http.Flusher).Flush()
			once.Do(func() { close(started) })
			<-r.Context().Done() // the rest never comes
		})
	})
	push(t, reg+"/app:1", img)
	before := tree(t, s.root)
	cctx, cancel := context.WithCancel(ctx)
	go func() { <-started; cancel() }()
	if _, err := s.Pull(cctx, reg+"/app:1", PullOptions{}); err == nil {
		t.Fatal("a cancelled pull succeeded")
	}
	if after := tree(t, s.root); after != before {
		t.Errorf("the store changed:\n--- before\n%s\n--- after\n%s", before, after)
	}
}
