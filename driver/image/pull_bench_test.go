package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
)

// BenchmarkPull measures a pull of a 128 MiB image of four random layers
// from a registry on loopback into an empty store: berth's, and skopeo
// copy of the same image into an OCI layout when skopeo is installed (both
// download, verify and write every blob; neither unpacks). make bench
// prints both; the goal is berth at least as fast.
func BenchmarkPull(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("run as root")
	}
	reg := newRegistry(b, nil)
	img, err := random.Image(32<<20, 4)
	if err != nil {
		b.Fatal(err)
	}
	push(b, reg+"/bench:1", img)
	m, err := img.Manifest()
	if err != nil {
		b.Fatal(err)
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}

	b.Run("berth", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			root := filepath.Join(b.TempDir(), "images")
			s, err := New(Config{Root: root})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := s.Pull(context.Background(), reg+"/bench:1", PullOptions{}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			os.RemoveAll(root)
			b.StartTimer()
		}
	})
	b.Run("skopeo", func(b *testing.B) {
		skopeo, err := exec.LookPath("skopeo")
		if err != nil {
			b.Skip("skopeo is not installed (apt-get install skopeo)")
		}
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			dst := filepath.Join(b.TempDir(), "oci")
			b.StartTimer()
			out, err := exec.Command(skopeo, "copy", "--quiet", "--src-tls-verify=false",
				"docker://"+reg+"/bench:1", "oci:"+dst+":bench").CombinedOutput()
			if err != nil {
				b.Fatalf("skopeo copy: %v\n%s", err, out)
			}
			b.StopTimer()
			os.RemoveAll(dst)
			b.StartTimer()
		}
	})
}
