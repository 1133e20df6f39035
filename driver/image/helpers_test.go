package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/zclconf/go-cty/cty"

	"github.com/seed-e88ffcd2/berth/resource"
)

var ctx = context.Background()

// mtime is the modification time the crafted layers carry.
var mtime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T) *Store {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the image store keeps owners and makes whiteout devices: run as root")
	}
	s, err := New(Config{Root: filepath.Join(t.TempDir(), "images")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// entry is one tar entry of a crafted layer.
type entry struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	uid  int
	pax  map[string]string
	// major and minor number a device entry.
	major, minor int64
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o644}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: to, mode: 0o777}
}
func hardlink(name, to string) entry {
	return entry{name: name, typ: tar.TypeLink, link: to, mode: 0o644}
}

// tarBytes writes entries as a tar, without the checks a well-behaved
// producer would make: malicious layers are made with it too.
func tarBytes(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode,
			Uid: e.uid, Gid: e.uid, ModTime: mtime, Size: int64(len(e.body)),
			PAXRecords: e.pax, Format: tar.FormatPAX,
			Devmajor: e.major, Devminor: e.minor,
		}
		if e.typ == tar.TypeChar {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layer makes a gzipped layer of entries.
func layer(t testing.TB, entries ...entry) v1.Layer {
	t.Helper()
	b := tarBytes(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// image stacks layers into an image with a config.
func image(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// dockerArchive writes images as docker save would, tagged.
func dockerArchive(t testing.TB, imgs map[string]v1.Image) string {
	t.Helper()
	refs := map[name.Reference]v1.Image{}
	for tag, img := range imgs {
		ref, err := name.NewTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		refs[ref] = img
	}
	path := filepath.Join(t.TempDir(), "docker.tar")
	if err := tarball.MultiRefWriteToFile(path, refs); err != nil {
		t.Fatal(err)
	}
	return path
}

// ociArchive writes an image as an OCI layout and tars the layout.
func ociArchive(t testing.TB, img v1.Image, refName string) string {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": refName})); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "oci.tar")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// imageVal is an image value with the given attributes and the rest null.
func imageVal(attrs map[string]cty.Value) cty.Value {
	vals := map[string]cty.Value{}
	for n, at := range resource.ImageSchema.ImpliedType().AttributeTypes() {
		vals[n] = cty.NullVal(at)
	}
	for n, v := range attrs {
		vals[n] = v
	}
	return cty.ObjectVal(vals)
}

func archiveVal(name, path string) cty.Value {
	return imageVal(map[string]cty.Value{"name": cty.StringVal(name), "archive": cty.StringVal(path)})
}

func str(v cty.Value, attr string) string {
	a := v.GetAttr(attr)
	if a.IsNull() || !a.IsKnown() {
		return ""
	}
	return a.AsString()
}

func addr(n string) resource.Addr { return resource.Addr{Kind: resource.KindImage, Name: n} }

// listDir names what is in a directory, for counting blobs and layers.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
