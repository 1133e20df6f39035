package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// TestMaliciousLayers: whatever a layer holds, nothing is written outside
// the layer directory. Each case runs in a sandbox holding the layer and a
// directory "outside" that attacks aim at; after unpacking, outside must
// be empty and /etc/passwd untouched.
func TestMaliciousLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("run as root: the unpacker sets owners")
	}
	passwd := fileSum(t, "/etc/passwd")
	tests := []struct {
		name    string
		entries func(outside string) []entry
		// refused: the unpack must fail. Otherwise it may succeed, as
		// long as it stays inside.
		refused bool
	}{
		{"dotdot", func(string) []entry { return []entry{file("../outside/escape", "x")} }, true},
		{"dotdot inside a path", func(string) []entry { return []entry{file("a/../../outside/escape", "x")} }, true},
		{"absolute", func(o string) []entry { return []entry{file(filepath.Join(o, "escape"), "x")} }, true},
		{"absolute /etc/passwd", func(string) []entry { return []entry{file("/etc/passwd", "root::0:0::/:/bin/sh\n")} }, true},
		{"write through absolute symlink", func(o string) []entry {
			return []entry{symlink("link", o), file("link/escape", "x")}
		}, true},
		{"write through relative symlink", func(string) []entry {
			return []entry{symlink("link", "../outside"), file("link/escape", "x")}
		}, true},
		{"directory through symlink", func(o string) []entry {
			return []entry{symlink("link", o), dir("link/sub/")}
		}, true},
		{"symlink parent deep", func(o string) []entry {
			return []entry{dir("a/"), symlink("a/b", o), file("a/b/c/escape", "x")}
		}, true},
		{"hard link to /etc/passwd", func(string) []entry { return []entry{hardlink("pw", "/etc/passwd")} }, true},
		{"hard link up to /etc/passwd", func(string) []entry { return []entry{hardlink("pw", "../../../../../../etc/passwd")} }, true},
		{"hard link through symlink", func(string) []entry {
			return []entry{symlink("etc", "/etc"), hardlink("pw", "etc/passwd")}
		}, true},
		{"file replaces symlink, not its target", func(o string) []entry {
			return []entry{symlink("f", filepath.Join(o, "target")), file("f", "x")}
		}, false},
		{"hard link to a symlink links the symlink", func(string) []entry {
			return []entry{symlink("pw", "/etc/passwd"), hardlink("pw2", "pw"), file("pw2", "root::0:0::/:/bin/sh\n")}
		}, false},
		{"whiteout through symlink", func(o string) []entry {
			return []entry{symlink("link", o), entry{name: "link/.wh.x", typ: tar.TypeReg}}
		}, true},
		{"opaque through symlink", func(o string) []entry {
			return []entry{symlink("link", o), entry{name: "link/.wh..wh..opq", typ: tar.TypeReg}}
		}, true},
		{"whiteout of dotdot", func(string) []entry { return []entry{{name: "a/.wh..."}} }, true},
		{"device node", func(string) []entry {
			// /dev/mem: a layer must not hand a container the host's memory.
			return []entry{{name: "mem", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 1}}
		}, false},
		{"trusted xattr", func(string) []entry {
			return []entry{{name: "d/", typ: tar.TypeDir, mode: 0o755, pax: map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc"}}}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sandbox := t.TempDir()
			layerDir := filepath.Join(sandbox, "layer")
			outside := filepath.Join(sandbox, "outside")
			for _, d := range []string{layerDir, outside} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			err := extractLayer(bytes.NewReader(tarBytes(t, tt.entries(outside)...)), layerDir)
			if tt.refused && err == nil {
				t.Error("unpacked without error")
			}
			if !tt.refused && err != nil {
				t.Errorf("refused: %v", err)
			}
			if names := listDir(t, outside); len(names) != 0 {
				t.Errorf("written outside the layer: %v", names)
			}
			if names := listDir(t, sandbox); len(names) != 2 {
				t.Errorf("sandbox holds %v, want only layer and outside", names)
			}
			if fileSum(t, "/etc/passwd") != passwd {
				t.Fatal("/etc/passwd changed")
			}
			if _, err := os.Lstat(filepath.Join(layerDir, "mem")); err == nil {
				t.Error("device node created")
			}
			if _, err := unix.Lgetxattr(filepath.Join(layerDir, "d"), "trusted.overlay.redirect", make([]byte, 64)); err == nil {
				t.Error("trusted.overlay.redirect taken from the layer")
			}
		})
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestMaliciousImage: an image with an escaping layer fails to create and
// leaves neither a layer directory nor temporary files behind.
func TestMaliciousImage(t *testing.T) {
	s := newStore(t)
	img := image(t, v1.Config{}, layer(t, file("ok", "x"), file("../escape", "x")))
	val := archiveVal("bad", dockerArchive(t, map[string]v1.Image{"bad:latest": img}))
	if _, err := s.Create(ctx, addr("bad"), val); err == nil {
		t.Fatal("Create succeeded")
	}
	if names := listDir(t, s.layerDir()); len(names) != 0 {
		t.Errorf("layer directories left: %v", names)
	}
	if names := listDir(t, s.tmpDir()); len(names) != 0 {
		t.Errorf("temporary files left: %v", names)
	}
	if _, err := os.Lstat(filepath.Join(s.root, "layers", "escape")); err == nil {
		t.Error("escape written beside the layers")
	}
}

// TestLayerDiffIDMismatch: a layer whose content is not what the config
// promises is refused, so a tampered blob never becomes a lower directory.
func TestLayerDiffIDMismatch(t *testing.T) {
	s := newStore(t)
	l := v1.Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar"}
	var err error
	l.Digest, l.Size, err = s.putBlob(bytes.NewReader(tarBytes(t, file("a", "a"))), v1.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	wrong := v1.Hash{Algorithm: "sha256", Hex: "0000000000000000000000000000000000000000000000000000000000000000"}
	if err := s.unpackLayer(l, wrong); err == nil {
		t.Fatal("unpacked a layer under the wrong diff ID")
	}
	if names := listDir(t, s.layerDir()); len(names) != 0 {
		t.Errorf("layer directories left: %v", names)
	}
}
