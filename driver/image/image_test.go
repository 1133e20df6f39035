package image

import (
	"archive/tar"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/resource"
)

// baseLayer and appLayer exercise what unpacking must keep: modes, owners,
// times, symlinks, hard links, whiteouts and opaque directories.
func baseLayer(t testing.TB) v1.Layer {
	return layer(t,
		dir("bin/"),
		entry{name: "bin/tool", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o4755, uid: 1000},
		hardlink("bin/tool-link", "bin/tool"),
		symlink("bin/sh", "/bin/busybox"),
		dir("etc/"),
		file("etc/motd", "base\n"),
		file("etc/old", "gone in app\n"),
		dir("var/"),
		file("var/cache", "replaced by an opaque dir\n"),
		dir("data/"),
		file("data/a", "a\n"),
	)
}

func appLayer(t testing.TB) v1.Layer {
	return layer(t,
		file("etc/motd", "app\n"),
		entry{name: "etc/.wh.old", typ: tar.TypeReg, mode: 0o644},
		dir("data/"),
		entry{name: "data/.wh..wh..opq", typ: tar.TypeReg, mode: 0o644},
		file("data/b", "b\n"),
		entry{name: "run/fifo", typ: tar.TypeFifo, mode: 0o600},
		entry{name: "dev/sda", typ: tar.TypeBlock, mode: 0o600},
	)
}

func TestImportArchives(t *testing.T) {
	cfg := v1.Config{Cmd: []string{"/bin/tool"}, Env: []string{"PATH=/bin", "A=1"}, WorkingDir: "/data", User: "1000", Labels: map[string]string{"l": "v"}}
	img := image(t, cfg, baseLayer(t), appLayer(t))
	wantID, _ := img.ConfigName()
	wantDigest, _ := img.Digest()

	tests := []struct {
		name    string
		archive string
		// digest is the manifest digest the import must keep, or ""
		// when berth writes the manifest itself (docker save has none).
		digest string
	}{
		{"docker save", dockerArchive(t, map[string]v1.Image{"example/app:1": img}), ""},
		{"OCI layout", ociArchive(t, img, "1"), wantDigest.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			got, err := s.Create(ctx, addr("app"), archiveVal("example/app", tt.archive))
			if err != nil {
				t.Fatal(err)
			}
			if id := str(got, "id"); id != wantID.String() {
				t.Errorf("id = %s, want the config digest %s", id, wantID)
			}
			if tt.digest != "" && str(got, "digest") != tt.digest {
				t.Errorf("digest = %s, want the layout's %s", str(got, "digest"), tt.digest)
			}
			if ref := str(got, "ref"); ref != "example/app@"+str(got, "digest") {
				t.Errorf("ref = %q", ref)
			}
			again, err := s.Create(ctx, addr("app"), archiveVal("example/app", tt.archive))
			if err != nil || !again.RawEquals(got) {
				t.Errorf("second Create = %#v, %v; want the same value", again, err)
			}

			info, err := s.Resolve(ctx, str(got, "ref"))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(info.Config.Cmd, cfg.Cmd) || !slices.Equal(info.Config.Env, cfg.Env) ||
				info.Config.WorkingDir != "/data" || info.Config.User != "1000" || info.Config.Labels["l"] != "v" {
				t.Errorf("config = %+v", info.Config)
			}
			if len(info.Layers) != 2 {
				t.Fatalf("layers = %v", info.Layers)
			}
			checkBase(t, info.Layers[0])
			checkApp(t, info.Layers[1])

			if bare, err := s.Resolve(ctx, str(got, "digest")); err != nil || !slices.Equal(bare.Layers, info.Layers) {
				t.Errorf("Resolve(bare digest) = %v, %v", bare, err)
			}
			if obs, err := s.Observe(ctx, addr("app"), got); err != nil || obs.Health != resource.Healthy {
				t.Errorf("Observe = %+v, %v", obs, err)
			}
		})
	}
}

func checkBase(t *testing.T, dir string) {
	t.Helper()
	st := lstat(t, filepath.Join(dir, "bin/tool"))
	if st.Mode&0o7777 != 0o4755 || st.Uid != 1000 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("bin/tool: mode %o uid %d mtime %d; want 4755, 1000, %d", st.Mode&0o7777, st.Uid, st.Mtim.Sec, mtime.Unix())
	}
	if link := lstat(t, filepath.Join(dir, "bin/tool-link")); link.Ino != st.Ino {
		t.Error("bin/tool-link is not a hard link of bin/tool")
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q, %v", target, err)
	}
	if st := lstat(t, filepath.Join(dir, "etc")); st.Mtim.Sec != mtime.Unix() {
		t.Errorf("etc: directory mtime %d, want %d", st.Mtim.Sec, mtime.Unix())
	}
}

func checkApp(t *testing.T, dir string) {
	t.Helper()
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/motd")); string(b) != "app\n" {
		t.Errorf("etc/motd = %q", b)
	}
	wh := lstat(t, filepath.Join(dir, "etc/old"))
	if wh.Mode&unix.S_IFMT != unix.S_IFCHR || wh.Rdev != 0 {
		t.Errorf("etc/old: mode %o rdev %d, want a 0:0 character device (overlay whiteout)", wh.Mode, wh.Rdev)
	}
	if _, err := os.Lstat(filepath.Join(dir, "etc/.wh.old")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("etc/.wh.old unpacked as a file: %v", err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "data"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("data: trusted.overlay.opaque = %q, %v; want y", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "data/.wh..wh..opq")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("opaque marker unpacked as a file: %v", err)
	}
	if st := lstat(t, filepath.Join(dir, "run/fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("run/fifo: mode %o", st.Mode)
	}
	if _, err := os.Lstat(filepath.Join(dir, "dev/sda")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("device node dev/sda was created: %v", err)
	}
}

func lstat(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// TestSharedLayersAndGC: two images sharing a base unpack it once;
// deleting one keeps the shared layer and removes the other's.
func TestSharedLayersAndGC(t *testing.T) {
	s := newStore(t)
	base := baseLayer(t)
	a := image(t, v1.Config{Cmd: []string{"a"}}, base, layer(t, file("a", "a")))
	b := image(t, v1.Config{Cmd: []string{"b"}}, base, layer(t, file("b", "b")))
	valA := archiveVal("a", dockerArchive(t, map[string]v1.Image{"a:latest": a}))
	valB := archiveVal("b", ociArchive(t, b, "b"))

	gotA, err := s.Create(ctx, addr("a"), valA)
	if err != nil {
		t.Fatal(err)
	}
	infoA, err := s.Resolve(ctx, str(gotA, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	baseIno := lstat(t, infoA.Layers[0]).Ino
	gotB, err := s.Create(ctx, addr("b"), valB)
	if err != nil {
		t.Fatal(err)
	}
	infoB, err := s.Resolve(ctx, str(gotB, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	if infoA.Layers[0] != infoB.Layers[0] {
		t.Fatalf("base layer unpacked twice: %s and %s", infoA.Layers[0], infoB.Layers[0])
	}
	if ino := lstat(t, infoB.Layers[0]).Ino; ino != baseIno {
		t.Error("base layer was unpacked again by the second image")
	}
	if n := len(listDir(t, s.layerDir())); n != 3 {
		t.Errorf("%d unpacked layers, want 3 (base, a, b)", n)
	}

	if err := s.Delete(ctx, addr("a"), gotA); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, addr("a"), gotA); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := os.Stat(infoA.Layers[1]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a's own layer survived its deletion: %v", err)
	}
	if _, err := s.Resolve(ctx, str(gotA, "ref")); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("Resolve(deleted) = %v, want ErrNotFound", err)
	}
	if obs, _ := s.Observe(ctx, addr("a"), gotA); obs.Health != resource.Missing {
		t.Errorf("Observe(deleted) = %+v", obs)
	}
	if again, err := s.Resolve(ctx, str(gotB, "ref")); err != nil || !slices.Equal(again.Layers, infoB.Layers) {
		t.Fatalf("b after deleting a: %v, %v", again, err)
	}
	for _, d := range infoB.Layers {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("b's layer was collected: %v", err)
		}
	}
	// b: manifest, config, two layers.
	if n := len(listDir(t, s.blobDir())); n != 4 {
		t.Errorf("%d blobs after deleting a, want b's 4", n)
	}

	if err := s.Delete(ctx, addr("b"), gotB); err != nil {
		t.Fatal(err)
	}
	if l, b := listDir(t, s.layerDir()), listDir(t, s.blobDir()); len(l)+len(b) != 0 {
		t.Errorf("after deleting everything: layers %v, blobs %v", l, b)
	}
}

// TestObserveMissingLayer: an unpacked layer removed behind the store's
// back makes the image Missing, and Resolve unpacks it again.
func TestObserveMissingLayer(t *testing.T) {
	s := newStore(t)
	img := image(t, v1.Config{}, baseLayer(t))
	got, err := s.Create(ctx, addr("app"), archiveVal("app", dockerArchive(t, map[string]v1.Image{"app:latest": img})))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Resolve(ctx, str(got, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(info.Layers[0]); err != nil {
		t.Fatal(err)
	}
	if obs, err := s.Observe(ctx, addr("app"), got); err != nil || obs.Health != resource.Missing || obs.Reason == "" {
		t.Errorf("Observe = %+v, %v; want Missing with a reason", obs, err)
	}
	if _, err := s.Resolve(ctx, str(got, "ref")); err != nil {
		t.Fatal(err)
	}
	checkBase(t, info.Layers[0])
}

// TestPreview: a preview computes the digests without recording a name;
// an unknown source leaves them unknown.
func TestPreview(t *testing.T) {
	s := newStore(t)
	img := image(t, v1.Config{}, baseLayer(t))
	val := archiveVal("app", ociArchive(t, img, "app"))
	want, _ := img.Digest()

	got, err := s.Preview(ctx, addr("app"), cty.NullVal(val.Type()), val)
	if err != nil {
		t.Fatal(err)
	}
	if str(got, "ref") != "app@"+want.String() || str(got, "digest") != want.String() || str(got, "id") == "" {
		t.Errorf("Preview = %#v", got)
	}
	if _, err := s.Resolve(ctx, str(got, "ref")); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("Resolve after Preview = %v, want ErrNotFound: a preview records nothing", err)
	}
	if n := len(listDir(t, s.layerDir())); n != 0 {
		t.Errorf("Preview unpacked %d layers", n)
	}

	unknown := resource.WithAttrs(val, map[string]cty.Value{"archive": cty.UnknownVal(cty.String)})
	got, err = s.Preview(ctx, addr("app"), cty.NullVal(val.Type()), unknown)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetAttr("digest").IsKnown() || got.GetAttr("ref").IsKnown() {
		t.Errorf("Preview with an unknown archive filled in %#v", got)
	}
}

func TestMissingSources(t *testing.T) {
	s := newStore(t)
	missing := filepath.Join(t.TempDir(), "nope")
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	notTar := filepath.Join(t.TempDir(), "junk.tar")
	if err := os.WriteFile(notTar, []byte(strings.Repeat("junk", 200)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		val  cty.Value
		want []string
	}{
		{"missing archive", archiveVal("x", missing), []string{missing, "docker save"}},
		{"archive is a directory", archiveVal("x", t.TempDir()), []string{"is a directory", "rootfs"}},
		{"not a tar", archiveVal("x", notTar), []string{notTar, "not a readable tar"}},
		{"missing rootfs", imageVal(map[string]cty.Value{"rootfs": cty.StringVal(missing)}), []string{missing, "does not exist"}},
		{"rootfs is a file", imageVal(map[string]cty.Value{"rootfs": cty.StringVal(notDir)}), []string{notDir, "not a directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, op := range []string{"Preview", "Create"} {
				var err error
				if op == "Preview" {
					_, err = s.Preview(ctx, addr("x"), cty.NullVal(tt.val.Type()), tt.val)
				} else {
					_, err = s.Create(ctx, addr("x"), tt.val)
				}
				if err == nil {
					t.Fatalf("%s succeeded", op)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not mention %q", op, err, w)
					}
				}
			}
		})
	}
}

// TestConcurrent: parallel creates, previews and resolves of images that
// share layers, as a parallel apply makes them; run with -race.
func TestConcurrent(t *testing.T) {
	s := newStore(t)
	base := baseLayer(t)
	var archives []string
	for i := range 4 {
		img := image(t, v1.Config{Cmd: []string{string(rune('a' + i))}}, base, layer(t, file("n", string(rune('a'+i)))))
		archives = append(archives, dockerArchive(t, map[string]v1.Image{"x:latest": img}))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			name := string(rune('a' + i))
			val := archiveVal(name, archives[i%4])
			if _, err := s.Preview(ctx, addr(name), cty.NullVal(val.Type()), val); err != nil {
				errs <- err
				return
			}
			got, err := s.Create(ctx, addr(name), val)
			if err != nil {
				errs <- err
				return
			}
			if _, err := s.Resolve(ctx, str(got, "ref")); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(listDir(t, s.layerDir())); n != 5 {
		t.Errorf("%d unpacked layers, want 5", n)
	}
	if n := len(listDir(t, s.tmpDir())); n != 0 {
		t.Errorf("%d leftovers in tmp", n)
	}
}

// TestGCKeepsMountedLayers: a layer a mounted overlay uses (a container's
// root) survives the deletion of its image, and goes once unmounted.
func TestGCKeepsMountedLayers(t *testing.T) {
	s := newStore(t)
	val := archiveVal("app", ociArchive(t, image(t, v1.Config{}, baseLayer(t)), "app"))
	got, err := s.Create(ctx, addr("app"), val)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Resolve(ctx, str(got, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	target, empty := t.TempDir(), t.TempDir()
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, "lowerdir="+info.Layers[0]+":"+empty); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			_ = unix.Unmount(target, unix.MNT_DETACH)
		}
	})
	if err := s.Delete(ctx, addr("app"), got); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(info.Layers[0]); err != nil {
		t.Fatalf("GC removed a layer a mount uses: %v", err)
	}
	if err := unix.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}
	mounted = false
	if err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(info.Layers[0]); !os.IsNotExist(err) {
		t.Errorf("the unmounted layer is still there: %v", err)
	}
}
