package image

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
)

// BenchmarkPreviewRootfs measures re-planning a 50 MB directory: cached
// (unchanged, one lstat per file) against uncached (a file touched before
// every preview, so the directory is tarred and hashed again).
func BenchmarkPreviewRootfs(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("run as root")
	}
	dir := b.TempDir()
	chunk := make([]byte, 100<<10)
	for i := range 500 {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i/50))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		rand.Read(chunk)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", i)), chunk, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, cached := range []bool{true, false} {
		name := map[bool]string{true: "cached", false: "uncached"}[cached]
		b.Run(name, func(b *testing.B) {
			s, err := New(Config{Root: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			val := imageVal(map[string]cty.Value{"name": cty.StringVal("bench"), "rootfs": cty.StringVal(dir)})
			null := cty.NullVal(val.Type())
			if _, err := s.Preview(ctx, addr("bench"), null, val); err != nil {
				b.Fatal(err)
			}
			touched := filepath.Join(dir, "d00", "f000")
			for i := 0; b.Loop(); i++ {
				if !cached {
					t := time.Unix(int64(i+1), 0)
					if err := os.Chtimes(touched, t, t); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := s.Preview(ctx, addr("bench"), null, val); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "previews/s")
		})
	}
}
