package build

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestMatchStaysInTheContext: a wildcard match through a symlink resolves
// inside the context, so it can neither read the host's files nor reach
// what .dockerignore excludes.
func TestMatchStaysInTheContext(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, d := range []string{"private", "public"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{"private/key": "k", "public/page": "p"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"sym": outside, "pub": "private"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	ignored := func(rel string) bool { return rel == "private" || rel == "private/key" }
	for _, tt := range []struct {
		src  string
		want []string
	}{
		{"s*/secret", nil}, // sym resolves to root, where there is no secret
		{"pub/*", nil},     // pub is private, which is ignored
		{"p*/page", []string{"public/page"}},
		{"publ?c/*", []string{"public/page"}},
	} {
		got, err := matchIn(root, tt.src, ignored)
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("matchIn(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
	if _, err := matchIn(root, "pub/key", ignored); err == nil {
		t.Error("pub/key reached an ignored file through a symlink")
	}
}
