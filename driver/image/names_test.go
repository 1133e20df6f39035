package image

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestNamesAreCheckedAndNormalised: names entering the store follow
// Docker's reference rules, and NAME is NAME:latest in every lookup.
func TestNamesAreCheckedAndNormalised(t *testing.T) {
	s := newStore(t)
	got, err := s.Create(ctx, addr("a"), archiveVal("a", dockerArchive(t, map[string]v1.Image{"a:1": image(t, v1.Config{Cmd: []string{"a"}}, baseLayer(t))})))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := v1.NewHash(str(got, "digest"))
	for _, bad := range []string{"", "App:1", "UPPER", ":1", "app:", "app::1", "-x", "Bad Name", "a@b"} {
		if err := s.Tag(bad, d); err == nil {
			t.Errorf("tag %q accepted", bad)
		}
	}
	if err := s.Tag("plain", d); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"plain", "plain:latest"} {
		if r, err := s.Ref(ref); err != nil || r != ref+"@"+d.String() {
			t.Errorf("ref %s = %q, %v", ref, r, err)
		}
		if _, err := s.Lookup(ref); err != nil {
			t.Errorf("lookup %s: %v", ref, err)
		}
	}
	list, _ := s.List()
	names := 0
	for _, l := range list {
		if l.Digest == d.String() && l.Name != "a" {
			names++
			if l.Name != "plain:latest" {
				t.Errorf("recorded %q, want plain:latest", l.Name)
			}
		}
	}
	if names != 1 {
		t.Errorf("%d names recorded, want 1: %+v", names, list)
	}
	for _, good := range []string{"localhost:5000/team/app:1.2", "registry.example.com/a_b/c-d:v1"} {
		if n, err := NormalizeName(good); err != nil || n != good {
			t.Errorf("NormalizeName(%q) = %q, %v", good, n, err)
		}
	}
}
