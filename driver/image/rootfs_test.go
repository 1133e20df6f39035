package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/resource"
)

// makeRootfs builds a small root filesystem with every kind of entry a
// directory image keeps.
func makeRootfs(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "etc/conf.d"), 0o750))
	must(os.WriteFile(filepath.Join(dir, "bin/app"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(unix.Chmod(filepath.Join(dir, "bin/app"), 0o4755))
	must(os.Link(filepath.Join(dir, "bin/app"), filepath.Join(dir, "bin/app2")))
	must(os.Symlink("app", filepath.Join(dir, "bin/sh")))
	must(os.WriteFile(filepath.Join(dir, "etc/conf.d/x.conf"), []byte("x=1\n"), 0o640))
	must(os.Lchown(filepath.Join(dir, "etc/conf.d/x.conf"), 1000, 1001))
	must(unix.Mkfifo(filepath.Join(dir, "etc/fifo"), 0o600))
	must(unix.Mknod(filepath.Join(dir, "etc/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	return dir
}

func rootfsVal(dir string, extra map[string]cty.Value) cty.Value {
	attrs := map[string]cty.Value{"name": cty.StringVal("app"), "rootfs": cty.StringVal(dir)}
	for k, v := range extra {
		attrs[k] = v
	}
	return imageVal(attrs)
}

func previewDigest(t *testing.T, s *Store, val cty.Value) string {
	t.Helper()
	got, err := s.Preview(ctx, addr("app"), cty.NullVal(val.Type()), val)
	if err != nil {
		t.Fatal(err)
	}
	return str(got, "digest")
}

// TestRootfsDeterministic: a directory's image depends on its content and
// the configured attributes, nothing else.
func TestRootfsDeterministic(t *testing.T) {
	s := newStore(t)
	dir := makeRootfs(t)
	first := previewDigest(t, s, rootfsVal(dir, nil))
	if first == "" {
		t.Fatal("no digest")
	}
	if again := previewDigest(t, s, rootfsVal(dir, nil)); again != first {
		t.Errorf("same directory twice: %s then %s", first, again)
	}
	if other := previewDigest(t, newStore(t), rootfsVal(dir, nil)); other != first {
		t.Errorf("same directory in another store: %s, want %s", other, first)
	}
	copied := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", dir, copied).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	if c := previewDigest(t, s, rootfsVal(copied, nil)); c != first {
		t.Errorf("a copy elsewhere (new inodes, same content): %s, want %s", c, first)
	}

	steps := []struct {
		name    string
		change  func(t *testing.T)
		changed bool
	}{
		{"touch only", func(t *testing.T) {
			if err := os.Chtimes(filepath.Join(dir, "bin/app"), mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"content", func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "etc/conf.d/x.conf"), []byte("x=2\n"), 0o640); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"mode", func(t *testing.T) {
			if err := os.Chmod(filepath.Join(dir, "etc/conf.d"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"owner", func(t *testing.T) {
			if err := os.Lchown(filepath.Join(dir, "bin/sh"), 5, 5); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"new file", func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "new"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	prev := first
	for _, st := range steps {
		st.change(t)
		got := previewDigest(t, s, rootfsVal(dir, nil))
		if (got != prev) != st.changed {
			t.Errorf("%s: digest %s → %s; want changed=%v", st.name, prev, got, st.changed)
		}
		prev = got
	}
}

// TestRootfsCreate: the unpacked image is the directory, and its config is
// what the attributes say.
func TestRootfsCreate(t *testing.T) {
	s := newStore(t)
	dir := makeRootfs(t)
	val := rootfsVal(dir, map[string]cty.Value{
		"command":     cty.ListVal([]cty.Value{cty.StringVal("-v")}),
		"entrypoint":  cty.ListVal([]cty.Value{cty.StringVal("/bin/app")}),
		"env":         resource.StringMapVal(map[string]string{"Z": "26", "A": "1"}),
		"working_dir": cty.StringVal("/etc"),
		"user":        cty.StringVal("1000:1001"),
		"labels":      resource.StringMapVal(map[string]string{"org.example": "yes"}),
	})
	got, err := s.Create(ctx, addr("app"), val)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Resolve(ctx, str(got, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if !slices.Equal(c.Cmd, []string{"-v"}) || !slices.Equal(c.Entrypoint, []string{"/bin/app"}) ||
		!slices.Equal(c.Env, []string{"A=1", "Z=26"}) || c.WorkingDir != "/etc" || c.User != "1000:1001" || c.Labels["org.example"] != "yes" {
		t.Errorf("config = %+v", c)
	}
	if info.ID != str(got, "id") {
		t.Errorf("Resolve ID %s, Create id %s", info.ID, str(got, "id"))
	}
	if len(info.Layers) != 1 {
		t.Fatalf("layers = %v", info.Layers)
	}
	l := info.Layers[0]
	app := lstat(t, filepath.Join(l, "bin/app"))
	if app.Mode&0o7777 != 0o4755 || app.Mtim.Sec != 0 {
		t.Errorf("bin/app: mode %o mtime %d; want 4755 and the epoch", app.Mode&0o7777, app.Mtim.Sec)
	}
	if lstat(t, filepath.Join(l, "bin/app2")).Ino != app.Ino {
		t.Error("bin/app2 is not a hard link of bin/app")
	}
	if target, _ := os.Readlink(filepath.Join(l, "bin/sh")); target != "app" {
		t.Errorf("bin/sh -> %q", target)
	}
	if conf := lstat(t, filepath.Join(l, "etc/conf.d/x.conf")); conf.Uid != 1000 || conf.Gid != 1001 || conf.Mode&0o777 != 0o640 {
		t.Errorf("x.conf: %d:%d %o", conf.Uid, conf.Gid, conf.Mode&0o777)
	}
	if lstat(t, filepath.Join(l, "etc/fifo")).Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Error("etc/fifo is not a fifo")
	}
	if _, err := os.Lstat(filepath.Join(l, "etc/null")); err == nil {
		t.Error("device node etc/null was kept")
	}
	if root := lstat(t, l); root.Mode&0o777 != 0o755 {
		t.Errorf("layer root mode %o, want 755 whatever the source directory's", root.Mode&0o777)
	}

	// The config is not the layer: another env reuses the cached layer.
	blobs := len(listDir(t, s.blobDir()))
	other := previewDigest(t, s, resource.WithAttrs(val, map[string]cty.Value{"env": resource.StringMapVal(map[string]string{"A": "2"})}))
	if other == str(got, "digest") {
		t.Error("another env gave the same digest")
	}
	if n := len(listDir(t, s.blobDir())); n != blobs+2 {
		t.Errorf("another env stored %d blobs, want 2 (config and manifest)", n-blobs)
	}
}
