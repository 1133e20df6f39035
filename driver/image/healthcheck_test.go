package image

import (
	"reflect"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seed-e88ffcd2/berth/resource"
)

func TestHealthcheckOfAnImageConfig(t *testing.T) {
	tests := []struct {
		name string
		in   *v1.HealthConfig
		want *resource.HealthcheckSpec
	}{
		{"none", nil, nil},
		{"inherit", &v1.HealthConfig{}, nil},
		{"NONE", &v1.HealthConfig{Test: []string{"NONE"}}, nil},
		{"CMD without a command", &v1.HealthConfig{Test: []string{"CMD"}}, nil},
		{"unknown", &v1.HealthConfig{Test: []string{"WHAT", "x"}}, nil},
		{"CMD", &v1.HealthConfig{Test: []string{"CMD", "false"}, Interval: 2 * time.Second, Retries: 1},
			&resource.HealthcheckSpec{Command: []string{"false"}, Interval: "2s", Retries: 1}},
		{"CMD-SHELL", &v1.HealthConfig{
			Test:     []string{"CMD-SHELL", "wget -q -O- localhost || exit 1"},
			Interval: 5 * time.Second, Timeout: 1500 * time.Millisecond, StartPeriod: time.Minute, Retries: 4,
		}, &resource.HealthcheckSpec{Shell: "wget -q -O- localhost || exit 1", Interval: "5s", Timeout: "1.5s", StartPeriod: "1m0s", Retries: 4}},
	}
	for _, tt := range tests {
		got := healthcheck(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: healthcheck(%+v) = %+v, want %+v", tt.name, tt.in, got, tt.want)
		}
		if got != nil {
			// What the supervisor reads back (1m0s parses).
			if iv, _, _, _ := got.Durations(); tt.in.Interval != 0 && iv != tt.in.Interval {
				t.Errorf("%s: interval reads back as %v", tt.name, iv)
			}
		}
	}
}

// Resolve hands the container driver the image's HEALTHCHECK.
func TestResolveCarriesTheHealthcheck(t *testing.T) {
	s := newStore(t)
	img := image(t, v1.Config{Cmd: []string{"sleep", "1000"}, Healthcheck: &v1.HealthConfig{
		Test: []string{"CMD", "false"}, Interval: 2 * time.Second, Retries: 1,
	}}, layer(t, file("a", "a")))
	got, err := s.Create(ctx, addr("hc"), archiveVal("hc", dockerArchive(t, map[string]v1.Image{"hc:latest": img})))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Resolve(ctx, str(got, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	want := &resource.HealthcheckSpec{Command: []string{"false"}, Interval: "2s", Retries: 1}
	if !reflect.DeepEqual(info.Config.Healthcheck, want) {
		t.Errorf("Resolve: healthcheck = %+v, want %+v", info.Config.Healthcheck, want)
	}
}
