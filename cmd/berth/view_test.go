package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/apply"
	"github.com/seed-e88ffcd2/berth/resource"
)

func TestTextHooks(t *testing.T) {
	var out bytes.Buffer
	h := newTextHooks(&out, false)
	web := resource.Addr{Kind: resource.KindContainer, Name: "web"}
	vol := resource.Addr{Kind: resource.KindVolume, Name: "data"}
	h.PreApply(apply.Step{Addr: web, Op: apply.OpCreate})
	h.PreApply(apply.Step{Addr: vol, Op: apply.OpDelete})
	h.PostApply(apply.Step{Addr: vol, Op: apply.OpDelete}, errors.New("busy"), 1500*time.Millisecond)
	h.still(time.Now().Add(12 * time.Second))
	h.PostApply(apply.Step{Addr: web, Op: apply.OpCreate}, nil, 12345*time.Millisecond)
	want := `container.web: Creating...
volume.data: Destroying...
volume.data: Destruction failed after 1.5s: busy
container.web: Still creating... [12s elapsed]
container.web: Creation complete after 12.35s
`
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Error("colour codes without a terminal")
	}
}
