package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/seed-e88ffcd2/berth/dsl"
	"github.com/seed-e88ffcd2/berth/plan"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// pinResolved records in the lock file the image references the plan
// resolved that it did not pin yet, and in cfg.Lock, so the apply that
// follows pulls exactly what the plan showed. It prints each new pin on
// stderr (stdout may be a JSON plan).
func (c *CLI) pinResolved(cfg *resource.Config, p *plan.Plan) bool {
	var planned []cty.Value
	for _, ch := range p.Changes {
		if ch.Addr.Kind == resource.KindImage && ch.Action != plan.Delete {
			planned = append(planned, ch.After)
		}
	}
	pins := dsl.Unpinned(cfg, planned)
	if len(pins) == 0 {
		return true
	}
	if err := dsl.Pin(cfg, pins); err != nil {
		c.errorf("%v", err)
		return false
	}
	for _, ref := range sortedRefs(pins) {
		fmt.Fprintf(c.Stderr, "Pinned %s to %s in %s.\n", ref, pins[ref], dsl.LockFile)
	}
	return true
}

// sortedRefs lists a map's keys in order.
func sortedRefs[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lock is berth lock [-update] [NAME...]: pin every image reference of
// the configuration that is not pinned, drop pins no image uses, and with
// -update resolve again the named references (or all of them).
func (c *CLI) lock(ctx context.Context, args []string) int {
	fs := c.newFlags("lock", "[flags] [NAME...]")
	var cf configFlags
	cf.register(fs)
	update := fs.Bool("update", false, "resolve pinned references again: those named (a reference, or an image such as image.app), or all")
	in, names, code, ok := c.parseConfig(fs, &cf, args)
	if !ok {
		return code
	}
	if len(names) > 0 && !*update {
		return c.errorf("lock takes names only with -update: berth lock -update %s", strings.Join(names, " "))
	}
	cfg, ok := c.load(in)
	if !ok {
		return 1
	}
	// The project's lock, as apply takes it: a plan or an apply pinning
	// what it resolved must not write the lock file back over this one.
	s, err := c.open(cfg.Project, "lock", true)
	if err != nil {
		return c.errorf("%v", err)
	}
	defer s.close()
	refs, unknown := dsl.PullRefs(cfg)
	again := map[string]bool{}
	for _, n := range names {
		matched := false
		for ref, addrs := range refs {
			for _, a := range addrs {
				if n == ref || n == a.String() || n == a.Resource().String() {
					again[ref], matched = true, true
				}
			}
		}
		if !matched {
			return c.errorf("%q is neither an image reference of this configuration nor an image that pulls one (the references are: %s)", n, strings.Join(sortedRefs(refs), ", "))
		}
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	pins := map[string]string{}
	changed := false
	for _, ref := range sortedRefs(refs) {
		if strings.Contains(ref, "@") {
			continue // pinned by its own digest
		}
		old, pinned := cfg.Lock[ref]
		if pinned && !(*update && (len(names) == 0 || again[ref])) {
			pins[ref] = old
			continue
		}
		d, err := images.RemoteDigest(ctx, ref)
		if err != nil {
			return c.errorf("resolving %s (used by %s): %v", ref, addrList(refs[ref]), err)
		}
		pins[ref] = d
		switch {
		case !pinned:
			fmt.Fprintf(c.Stdout, "Pinned %s to %s.\n", ref, d)
			changed = true
		case old != d:
			fmt.Fprintf(c.Stdout, "Updated %s: %s -> %s.\n", ref, old, d)
			changed = true
		default:
			fmt.Fprintf(c.Stdout, "%s is still %s.\n", ref, d)
		}
	}
	for _, ref := range sortedRefs(cfg.Lock) {
		if _, used := pins[ref]; used {
			continue
		}
		if len(unknown) > 0 {
			// An image whose reference is known only when planned may
			// use it: keep it.
			pins[ref] = cfg.Lock[ref]
			continue
		}
		fmt.Fprintf(c.Stdout, "Removed %s: no image pulls it any more.\n", ref)
		changed = true
	}
	if len(unknown) > 0 {
		fmt.Fprintf(c.Stdout, "%s pull a reference known only when planned; berth plan pins it.\n", addrList(unknown))
	}
	wrote, err := dsl.WriteLock(cfg.Dir, pins)
	if err != nil {
		return c.errorf("%v", err)
	}
	switch {
	case wrote:
		fmt.Fprintf(c.Stdout, "Wrote %s: %d references pinned.\n", dsl.LockFile, len(pins))
	case !changed:
		fmt.Fprintf(c.Stdout, "%s is up to date: %d references pinned.\n", dsl.LockFile, len(pins))
	}
	return 0
}

func addrList(addrs []resource.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
