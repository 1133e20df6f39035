package image

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/seed-e88ffcd2/berth/resource"
)

// healthcheck is an image config's HEALTHCHECK as a container's health
// check: ["CMD", args...] runs args, ["CMD-SHELL", command] runs command
// with /bin/sh -c; none, ["NONE"] or a test berth does not know is nil.
// Zero durations and retries are left unset, for the defaults.
func healthcheck(h *v1.HealthConfig) *resource.HealthcheckSpec {
	if h == nil || len(h.Test) == 0 {
		return nil
	}
	var out resource.HealthcheckSpec
	switch h.Test[0] {
	case "CMD":
		if len(h.Test) < 2 {
			return nil
		}
		out.Command = append([]string(nil), h.Test[1:]...)
	case "CMD-SHELL":
		if len(h.Test) < 2 || h.Test[1] == "" {
			return nil
		}
		out.Shell = h.Test[1]
	default: // NONE
		return nil
	}
	duration := func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return d.String()
	}
	out.Interval, out.Timeout, out.StartPeriod = duration(h.Interval), duration(h.Timeout), duration(h.StartPeriod)
	if h.Retries > 0 {
		out.Retries = h.Retries
	}
	return &out
}
