package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// storeListing is every path under the store's root with its size and
// mode, the lock files aside: what "the store is unchanged" compares.
func storeListing(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.root, p)
		if strings.HasSuffix(rel, ".lock") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		size := fi.Size()
		if fi.IsDir() {
			size = 0
		}
		out = append(out, fmt.Sprintf("%s %v %d", rel, fi.Mode(), size))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// archiveFile writes tar entries to a file.
func archiveFile(t testing.TB, entries ...entry) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "archive.tar")
	if err := os.WriteFile(p, tarBytes(t, entries...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// legacyDockerArchive is what docker save wrote before Docker 25, with
// the given layer tars: <id>/layer.tar, <config>.json, manifest.json,
// repositories. diffIDs, when set, are written into the config instead
// of the layers' own.
func legacyDockerArchive(t testing.TB, tag string, layers [][]byte, diffIDs []string) string {
	t.Helper()
	var es []entry
	var names []string
	cfg := v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: v1.RootFS{Type: "layers"}, Config: v1.Config{Cmd: []string{"sh"}}}
	for i, l := range layers {
		id := sha(l)
		names = append(names, id+"/layer.tar")
		es = append(es, dir(id+"/"), file(id+"/VERSION", "1.0"), file(id+"/json", `{"id":"`+id+`"}`), file(id+"/layer.tar", string(l)))
		d := "sha256:" + id
		if diffIDs != nil {
			d = diffIDs[i]
		}
		h, _ := v1.NewHash(d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, h)
	}
	rawCfg := mustJSON(t, cfg)
	cfgName := sha([]byte(rawCfg)) + ".json"
	es = append(es, file(cfgName, rawCfg))
	es = append(es, file("manifest.json", mustJSON(t, []map[string]any{{"Config": cfgName, "RepoTags": []string{tag}, "Layers": names}})))
	repo, tg, _ := strings.Cut(tag, ":")
	es = append(es, file("repositories", mustJSON(t, map[string]map[string]string{repo: {tg: sha(layers[len(layers)-1])}})))
	return archiveFile(t, es...)
}

// ociLayoutArchive is an OCI layout tar (with docker's manifest.json, as
// Docker 25 writes it, when docker is set) of one image of the given
// layer tars; blobs may override any blob's content by digest.
func ociLayoutArchive(t testing.TB, tag string, layers [][]byte, docker bool, tamper func(name string, body []byte) []byte) string {
	t.Helper()
	blobs := map[string][]byte{}
	put := func(b []byte) v1.Descriptor {
		h := sha(b)
		blobs[h] = b
		return v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: h}, Size: int64(len(b))}
	}
	cfg := v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: v1.RootFS{Type: "layers"}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	for _, l := range layers {
		d := put(l)
		d.MediaType = types.OCIUncompressedLayer
		m.Layers = append(m.Layers, d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, d.Digest)
	}
	m.Config = put([]byte(mustJSON(t, cfg)))
	m.Config.MediaType = types.OCIConfigJSON
	md := put([]byte(mustJSON(t, m)))
	md.MediaType = types.OCIManifestSchema1
	md.Annotations = map[string]string{"io.containerd.image.name": "docker.io/library/" + tag, "org.opencontainers.image.ref.name": strings.SplitN(tag, ":", 2)[1]}
	es := []entry{file("oci-layout", `{"imageLayoutVersion":"1.0.0"}`), file("index.json", mustJSON(t, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{md}})), dir("blobs/"), dir("blobs/sha256/")}
	if docker {
		var ls []string
		for _, l := range m.Layers {
			ls = append(ls, "blobs/sha256/"+l.Digest.Hex)
		}
		es = append(es, file("manifest.json", mustJSON(t, []map[string]any{{"Config": "blobs/sha256/" + m.Config.Digest.Hex, "RepoTags": []string{tag}, "Layers": ls}})))
	}
	keys := make([]string, 0, len(blobs))
	for k := range blobs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b := blobs[k]
		if tamper != nil {
			b = tamper(k, b)
		}
		es = append(es, file("blobs/sha256/"+k, string(b)))
	}
	return archiveFile(t, es...)
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s := newStore(t)
	img := image(t, v1.Config{Cmd: []string{"sh"}, Env: []string{"A=1"}},
		layer(t, dir("bin/"), file("bin/hello", "#!/bin/sh\necho hi\n"), symlink("bin/hi", "hello")),
		layer(t, file("etc/motd", "welcome\n"), file("bin/.wh.hi", "")))
	loaded, err := s.Load(ctx, dockerArchive(t, map[string]v1.Image{"test/app:1": img}), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := loaded[0].Digest
	for _, format := range []string{FormatDocker, FormatOCI} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := s.Save(&buf, []string{"test/app:1"}, format); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "saved.tar")
			if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			// A second save is the same bytes: the archive is reproducible.
			var again bytes.Buffer
			if err := s.Save(&again, []string{"test/app:1"}, format); err != nil || !bytes.Equal(buf.Bytes(), again.Bytes()) {
				t.Errorf("a second save differs (%v)", err)
			}
			entries := tarNames(t, buf.Bytes())
			hasDocker := slices.Contains(entries, "manifest.json") && slices.Contains(entries, "repositories")
			if hasDocker != (format == FormatDocker) || !slices.Contains(entries, "index.json") {
				t.Errorf("entries %v", entries)
			}
			other := newStore(t)
			got, err := other.Load(ctx, p, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Digest != want || !slices.Equal(got[0].Names, []string{"test/app:1"}) {
				t.Fatalf("loaded %+v, want digest %s named test/app:1", got, want)
			}
			back, err := other.Lookup("test/app:1")
			if err != nil {
				t.Fatal(err)
			}
			dirs, err := other.LayerDirs(back)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dirs[1], "etc/motd")); err != nil || string(b) != "welcome\n" {
				t.Errorf("motd: %q %v", b, err)
			}
		})
	}
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
}

// TestLoadLegacyDockerSave: the layout docker save wrote before Docker 25.
func TestLoadLegacyDockerSave(t *testing.T) {
	s := newStore(t)
	l := tarBytes(t, dir("etc/"), file("etc/hostname", "legacy\n"))
	got, err := s.Load(ctx, legacyDockerArchive(t, "legacy/app:2", [][]byte{l}, nil), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Lookup("legacy/app:2")
	if err != nil || img.Digest.String() != got[0].Digest {
		t.Fatalf("lookup: %v, %v", img, err)
	}
	if img.Manifest.Layers[0].Digest.Hex != sha(l) || !slices.Equal(img.Config.Config.Cmd, []string{"sh"}) {
		t.Errorf("manifest %+v config %+v", img.Manifest, img.Config.Config)
	}
}

// TestMaliciousArchives: a corpus of hostile or damaged archives, each
// refused with an error that says what is wrong, the store exactly as it
// was before (a good image already in it).
func TestMaliciousArchives(t *testing.T) {
	good := tarBytes(t, file("ok", "ok\n"))
	tests := []struct {
		name    string
		archive func(t *testing.T, outside string) string
		want    string
	}{
		{"layer traversal (docker save)", func(t *testing.T, _ string) string {
			return legacyDockerArchive(t, "evil/a:1", [][]byte{tarBytes(t, file("ok", "x"), file("../../escape", "x"))}, nil)
		}, "leaves the layer"},
		{"layer absolute path (OCI)", func(t *testing.T, o string) string {
			return ociLayoutArchive(t, "evil/a:1", [][]byte{tarBytes(t, file(filepath.Join(o, "escape"), "x"))}, false, nil)
		}, "absolute path"},
		{"absolute symlink written through (docker 25)", func(t *testing.T, o string) string {
			return ociLayoutArchive(t, "evil/a:1", [][]byte{tarBytes(t, symlink("link", o), file("link/escape", "x"))}, true, nil)
		}, "refusing to go through it"},
		{"relative symlink out, then a directory through it", func(t *testing.T, _ string) string {
			return legacyDockerArchive(t, "evil/a:1", [][]byte{tarBytes(t, symlink("up", "../../../.."), dir("up/tmp/evil/"))}, nil)
		}, "refusing to go through it"},
		{"hard link to /etc/passwd", func(t *testing.T, _ string) string {
			return legacyDockerArchive(t, "evil/a:1", [][]byte{tarBytes(t, hardlink("pw", "/etc/passwd"))}, nil)
		}, "hard link"},
		{"hard link through a symlink", func(t *testing.T, _ string) string {
			return ociLayoutArchive(t, "evil/a:1", [][]byte{tarBytes(t, symlink("etc", "/etc"), hardlink("pw", "etc/passwd"))}, false, nil)
		}, "hard link"},
		{"blob digest mismatch", func(t *testing.T, _ string) string {
			return ociLayoutArchive(t, "evil/a:1", [][]byte{good}, true, func(name string, b []byte) []byte {
				if name == sha(good) {
					return tarBytes(t, file("ok", "swapped\n"))
				}
				return b
			})
		}, "content does not match its digest"},
		{"truncated blob", func(t *testing.T, _ string) string {
			return ociLayoutArchive(t, "evil/a:1", [][]byte{good}, false, func(name string, b []byte) []byte {
				if name == sha(good) {
					return b[:len(b)/2]
				}
				return b
			})
		}, "truncated"},
		{"truncated archive", func(t *testing.T, _ string) string {
			p := ociLayoutArchive(t, "evil/a:1", [][]byte{good}, true, nil)
			b, _ := os.ReadFile(p)
			if err := os.WriteFile(p, b[:len(b)-2048], 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, "unexpected EOF"},
		{"diff ID mismatch (docker save)", func(t *testing.T, _ string) string {
			return legacyDockerArchive(t, "evil/a:1", [][]byte{good}, []string{"sha256:" + strings.Repeat("0", 64)})
		}, "but the config says"},
		{"manifest.json points outside the archive", func(t *testing.T, _ string) string {
			return archiveFile(t, file("manifest.json", `[{"Config":"../../../etc/passwd","RepoTags":["evil/a:1"],"Layers":[]}]`))
		}, "is missing"},
		{"entry name with ..", func(t *testing.T, _ string) string {
			return archiveFile(t, file("manifest.json", `[]`), file("../../escape", "x"))
		}, "leaves the layer"},
		{"blob as a symlink to a host file", func(t *testing.T, _ string) string {
			return archiveFile(t, file("manifest.json", `[{"Config":"c.json","RepoTags":["evil/a:1"],"Layers":[]}]`), symlink("c.json", "/etc/passwd"))
		}, "is missing"},
		{"digest that is a path", func(t *testing.T, _ string) string {
			idx := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../../etc/passwd","size":10}]}`
			return archiveFile(t, file("oci-layout", `{"imageLayoutVersion":"1.0.0"}`), file("index.json", idx))
		}, "digest"},
		{"no name", func(t *testing.T, _ string) string {
			return ociLayoutArchive(t, "evil/a:1", [][]byte{good}, false, nil)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if _, err := s.Load(ctx, legacyDockerArchive(t, "good/b:1", [][]byte{tarBytes(t, file("good", "yes\n"))}, nil), LoadOptions{}); err != nil {
				t.Fatal(err)
			}
			outside := t.TempDir()
			before := storeListing(t, s)
			p := tt.archive(t, outside)
			if tt.want == "" {
				// The control: the same archive, well-formed, loads.
				if _, err := s.Load(ctx, p, LoadOptions{}); err != nil {
					t.Fatalf("a well-formed archive was refused: %v", err)
				}
				return
			}
			_, err := s.Load(ctx, p, LoadOptions{})
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "nothing was stored") && !strings.Contains(err.Error(), "not a readable tar") {
				t.Errorf("error %q, want it to say %q (and that nothing was stored)", err, tt.want)
			}
			if after := storeListing(t, s); !slices.Equal(before, after) {
				t.Errorf("the store changed:\nbefore %v\nafter  %v", before, after)
			}
			if names := listDir(t, outside); len(names) != 0 {
				t.Errorf("written outside the store: %v", names)
			}
			if _, err := os.Lstat("/tmp/evil"); err == nil {
				t.Error("/tmp/evil was created")
			}
		})
	}
}

func TestImportTarAndDirectory(t *testing.T) {
	s := newStore(t)
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(p, tarBytes(t, dir("bin/"), file("bin/tool", "#!/bin/sh\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := s.Import(ctx, p, ImportOptions{Name: "imported/tar:1", Config: &v1.Config{Cmd: []string{"/bin/tool"}}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Lookup("imported/tar:1")
	if err != nil || img.Digest.String() != l.Digest || !slices.Equal(img.Config.Config.Cmd, []string{"/bin/tool"}) {
		t.Fatalf("%+v %v", img, err)
	}
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "hello"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, d, ImportOptions{Name: "imported/dir"}); err != nil {
		t.Fatal(err)
	}
	// A hostile tar is refused, and nothing is stored.
	before := storeListing(t, s)
	bad := filepath.Join(t.TempDir(), "bad.tar")
	if err := os.WriteFile(bad, tarBytes(t, file("../x", "x")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, bad, ImportOptions{Name: "imported/bad"}); err == nil || !strings.Contains(err.Error(), "leaves the layer") {
		t.Errorf("import of a hostile tar: %v", err)
	}
	if after := storeListing(t, s); !slices.Equal(before, after) {
		t.Errorf("the store changed:\nbefore %v\nafter  %v", before, after)
	}
}

func TestRemoveAndPruneKeepWhatIsUsed(t *testing.T) {
	s := newStore(t)
	one := image(t, v1.Config{}, layer(t, file("one", "1")))
	two := image(t, v1.Config{}, layer(t, file("two", "2")))
	three := image(t, v1.Config{}, layer(t, file("three", "3")))
	loaded, err := s.Load(ctx, dockerArchive(t, map[string]v1.Image{"t/one:1": one, "t/two:1": two, "t/three:1": three}), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	digest := map[string]v1.Hash{}
	for _, l := range loaded {
		digest[l.Names[0]], _ = v1.NewHash(l.Digest)
	}
	// t/two is a project's image; t/one is used by a container.
	if err := s.updateRecords(func(r *records) bool { r.Images["t/two:1"].Owner = "proj/image.two"; return true }); err != nil {
		t.Fatal(err)
	}
	users := func(d v1.Hash) []string {
		if d == digest["t/one:1"] {
			return []string{"web-1"}
		}
		return nil
	}
	if _, err := s.Remove(ctx, "t/one:1", users); err == nil || !strings.Contains(err.Error(), "used by container web-1") {
		t.Errorf("rm of a used image: %v", err)
	}
	if _, err := s.Remove(ctx, "t/two:1", users); err == nil || !strings.Contains(err.Error(), "belongs to proj/image.two") {
		t.Errorf("rm of a project's image: %v", err)
	}
	// Another name of the used image may go: the image stays.
	if _, err := s.TagName("t/one:1", "t/one:alias"); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Remove(ctx, "t/one:alias", users); err != nil || len(r.Deleted) != 0 {
		t.Errorf("rm of a second name: %+v, %v", r, err)
	}
	r, err := s.Prune(ctx, PruneOptions{All: true}, users)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Untagged, []string{"t/three:1"}) || r.Reclaimed <= 0 {
		t.Errorf("prune -a removed %+v", r)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Name)
	}
	if !slices.Equal(names, []string{"t/one:1", "t/two:1"}) {
		t.Errorf("left %v", names)
	}
	if _, err := s.LayerDirs(&Image{Digest: digest["t/one:1"], Manifest: mustImage(t, s, "t/one:1").Manifest, Config: mustImage(t, s, "t/one:1").Config}); err != nil {
		t.Errorf("the used image's layers: %v", err)
	}
}

func mustImage(t *testing.T, s *Store, ref string) *Image {
	t.Helper()
	img, err := s.Lookup(ref)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// fixtureID is the image ID docker gave the fixtures' image.
const fixtureID = "sha256:c659f55c2834bd1922b3f173c2d322eb61d1edeb8098bfab6919914744c472f2"

// TestLoadDockerSaveFixtures: archives docker save wrote (testdata/README
// says how) load with docker's image ID, and what berth saves of them
// loads back to the same digest.
func TestLoadDockerSaveFixtures(t *testing.T) {
	for _, f := range []string{"docker-save-legacy.tar", "docker-save-25.tar"} {
		t.Run(f, func(t *testing.T) {
			s := newStore(t)
			got, err := s.Load(ctx, filepath.Join("testdata", f), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].ID != fixtureID || !slices.Equal(got[0].Names, []string{"fixture/hello:2"}) {
				t.Fatalf("loaded %+v", got)
			}
			img, err := s.Lookup("fixture/hello:2")
			if err != nil {
				t.Fatal(err)
			}
			c := img.Config.Config
			if !slices.Equal(c.Cmd, []string{"/hello"}) || !slices.Contains(c.Env, "FIXTURE=docker") || c.Labels["org.example.fixture"] != "docker-save" {
				t.Errorf("config %+v", c)
			}
			dirs, err := s.LayerDirs(img)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dirs[1], "etc/motd")); err != nil || string(b) != "made by docker build\n" {
				t.Errorf("motd %q, %v", b, err)
			}
			var buf bytes.Buffer
			if err := s.Save(&buf, []string{"fixture/hello:2"}, FormatDocker); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "again.tar")
			if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			again, err := newStore(t).Load(ctx, p, LoadOptions{})
			if err != nil || again[0].Digest != got[0].Digest {
				t.Errorf("save and load again: %+v, %v; want digest %s", again, err, got[0].Digest)
			}
		})
	}
}
