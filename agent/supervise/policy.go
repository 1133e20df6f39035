package supervise

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Policy is a parsed restart policy.
type Policy struct {
	Name       string // no, always, unless-stopped, on-failure
	MaxRetries int    // on-failure:N; 0 is no limit
}

// ParsePolicy reads a restart policy as resource validates it; anything
// else (an older record) reads as "no".
func ParsePolicy(s string) Policy {
	switch {
	case s == "always", s == "unless-stopped", s == "on-failure":
		return Policy{Name: s}
	case strings.HasPrefix(s, "on-failure:"):
		if n, err := strconv.Atoi(strings.TrimPrefix(s, "on-failure:")); err == nil && n > 0 {
			return Policy{Name: "on-failure", MaxRetries: n}
		}
	}
	return Policy{Name: "no"}
}

func (p Policy) String() string {
	if p.MaxRetries > 0 {
		return fmt.Sprintf("%s:%d", p.Name, p.MaxRetries)
	}
	return p.Name
}

// exitFacts are what a restart decision looks at.
type exitFacts struct {
	code          int
	stoppedByUser bool
	restarts      int  // restarts the policy made since a person last started it
	agentStart    bool // the first look of a supervisor that just started
}

// decide applies Docker's restart policies to one exit: whether to start
// the container again, and if not, why not, in words.
//
// A container a person stopped (berth stop or kill, or a destroy) stays
// stopped, with one exception Docker has too: an "always" container comes
// back when the agent starts. "unless-stopped" is "always" without that
// exception.
func decide(p Policy, f exitFacts) (restart bool, why string) {
	switch p.Name {
	case "always":
		if f.stoppedByUser && !f.agentStart {
			return false, "it was stopped by a person"
		}
		return true, ""
	case "unless-stopped":
		if f.stoppedByUser {
			return false, "it was stopped by a person"
		}
		return true, ""
	case "on-failure":
		switch {
		case f.stoppedByUser:
			return false, "it was stopped by a person"
		case f.code == 0:
			return false, "it exited with code 0"
		case p.MaxRetries > 0 && f.restarts >= p.MaxRetries:
			return false, fmt.Sprintf("it was restarted %d times already", f.restarts)
		}
		return true, ""
	}
	return false, `its restart policy is "no"`
}

// Docker's restart back-off: 100 ms after the first exit, doubling after
// each exit up to a minute, and back to 100 ms once a run lasted 10 s.
const (
	backoffInitial = 100 * time.Millisecond
	backoffMax     = time.Minute
	backoffReset   = 10 * time.Second
)

// nextBackoff is the delay before restarting a container whose previous
// delay was prev and whose last run lasted ran (moby's restartmanager).
func nextBackoff(prev, ran time.Duration) time.Duration {
	if ran >= backoffReset {
		prev = 0
	}
	switch {
	case prev <= 0:
		return backoffInitial
	case prev*2 > backoffMax:
		return backoffMax
	}
	return prev * 2
}
