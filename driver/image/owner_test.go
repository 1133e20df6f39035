package image

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/zclconf/go-cty/cty"

	"github.com/seed-e88ffcd2/berth/resource"
)

func ownedBy(project string) context.Context {
	return resource.WithOwner(context.Background(), resource.Owner{Project: project, Addr: addr("bb")})
}

// TestNameOwnership: an image name another project recorded is refused by
// Preview and Create with that owner named, and stays on its image, whose
// layers survive the other project's delete; the owner's own create moves
// the name.
func TestNameOwnership(t *testing.T) {
	s := newStore(t)
	hello, other := ownedBy("hello"), ownedBy("xproj")
	mine := archiveVal("shared", dockerArchive(t, map[string]v1.Image{"a:1": image(t, v1.Config{Cmd: []string{"a"}}, baseLayer(t))}))
	theirs := archiveVal("shared", dockerArchive(t, map[string]v1.Image{"b:1": image(t, v1.Config{Cmd: []string{"b"}}, layer(t, file("b", "b")))}))
	got, err := s.Create(hello, addr("bb"), mine)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Resolve(ctx, str(got, "ref"))
	if err != nil {
		t.Fatal(err)
	}

	want := `image name "shared" already exists on this host and belongs to hello/image.bb; choose another name, or destroy it there`
	null := cty.NullVal(mine.Type())
	for _, v := range []cty.Value{mine, theirs} {
		if _, err := s.Preview(other, addr("bb"), null, v); !errors.Is(err, resource.ErrAlreadyExists) || err.Error() != want {
			t.Errorf("preview by another project = %v, want %q", err, want)
		}
		if _, err := s.Create(other, addr("bb"), v); !errors.Is(err, resource.ErrAlreadyExists) || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("create by another project = %v, want %q", err, want)
		}
	}
	if obs, err := s.Observe(other, addr("bb"), got); err != nil || obs.Health != resource.Missing || obs.Reason != "image shared now belongs to hello/image.bb" {
		t.Errorf("observe by another project = %+v, %v", obs, err)
	}
	// Their state holds the same value: the delete must not take the name
	// nor, through GC, the layers the owner's containers run on.
	if err := s.Delete(other, addr("bb"), got); err != nil {
		t.Errorf("delete by another project = %v, want success without touching it", err)
	}
	if obs, err := s.Observe(hello, addr("bb"), got); err != nil || obs.Health != resource.Healthy {
		t.Errorf("observe by the owner after another project's delete = %+v, %v", obs, err)
	}
	for _, l := range info.Layers {
		if _, err := os.Stat(l); err != nil {
			t.Errorf("another project's delete removed a layer: %v", err)
		}
	}

	if _, err := s.Preview(hello, addr("bb"), null, theirs); err != nil {
		t.Errorf("preview by the owner: %v", err)
	}
	moved, err := s.Create(hello, addr("bb"), theirs)
	if err != nil {
		t.Fatal(err)
	}
	if str(moved, "digest") == str(got, "digest") {
		t.Error("the owner's create did not move the name")
	}
	if obs, _ := s.Observe(hello, addr("bb"), moved); obs.Health != resource.Healthy {
		t.Errorf("observe of the moved name = %+v", obs)
	}
}

// TestDeleteDespiteDamagedRecord: a record whose config cannot be read
// does not make other images' deletes fail; GC names it and keeps its
// layers, and still collects the deleted image's blobs.
func TestDeleteDespiteDamagedRecord(t *testing.T) {
	s := newStore(t)
	a, err := s.Create(ctx, addr("a"), archiveVal("a", dockerArchive(t, map[string]v1.Image{"a:1": image(t, v1.Config{Cmd: []string{"a"}}, layer(t, file("a", "a")))})))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, addr("b"), archiveVal("b", dockerArchive(t, map[string]v1.Image{"b:1": image(t, v1.Config{Cmd: []string{"b"}}, baseLayer(t))})))
	if err != nil {
		t.Fatal(err)
	}
	infoB, err := s.Resolve(ctx, str(b, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	configB, err := v1.NewHash(str(b, "id"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.blobPath(configB), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	manifestA, _ := v1.NewHash(str(a, "digest"))

	if err := s.Delete(ctx, addr("a"), a); err != nil {
		t.Fatalf("delete beside a damaged record: %v", err)
	}
	if _, err := s.Resolve(ctx, str(a, "ref")); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("a's record survived its delete: %v", err)
	}
	if _, err := os.Stat(s.blobPath(manifestA)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a's manifest survived GC: %v", err)
	}
	for _, l := range infoB.Layers {
		if _, err := os.Stat(l); err != nil {
			t.Errorf("GC removed a layer of the damaged image: %v", err)
		}
	}
	if err := s.GC(ctx); err == nil || !strings.Contains(err.Error(), "image b is unreadable") {
		t.Errorf("GC = %v, want it to name the damaged image b", err)
	}
}

// TestPullRefusesAProjectsName: berth image pull -name refuses a name a
// project recorded, as tag does, before anything downloads.
func TestPullRefusesAProjectsName(t *testing.T) {
	s := newStore(t)
	if _, err := s.Create(ownedBy("proj"), addr("bb"), archiveVal("proj/app", dockerArchive(t, map[string]v1.Image{"a:1": image(t, v1.Config{Cmd: []string{"a"}}, baseLayer(t))}))); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Ref("proj/app")
	requests := 0
	reg := newRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests++; h.ServeHTTP(w, r) })
	})
	push(t, reg+"/other:1", randomImage(t, 1024, 1))
	requests = 0
	_, err := s.Pull(ctx, reg+"/other:1", PullOptions{Name: "proj/app"})
	if !errors.Is(err, resource.ErrConflict) || !strings.Contains(err.Error(), "belongs to proj/image.bb") {
		t.Errorf("pull -name of a project's name = %v, want a conflict naming the owner", err)
	}
	if requests > 0 {
		t.Errorf("pull downloaded before refusing: %d requests", requests)
	}
	if after, _ := s.Ref("proj/app"); after != before {
		t.Errorf("the project's name moved: %s, was %s", after, before)
	}
}
