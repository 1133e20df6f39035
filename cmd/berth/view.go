package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/seed-e88ffcd2/berth/apply"
	"github.com/seed-e88ffcd2/berth/plan"
	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

var opWords = map[apply.Op][2]string{
	apply.OpCreate:  {"Creating...", "Creation"},
	apply.OpUpdate:  {"Modifying...", "Modifications"},
	apply.OpDelete:  {"Destroying...", "Destruction"},
	apply.OpPrepare: {"Preparing (before anything is deleted)...", "Preparation"},
}

// textHooks shows each change as it starts and ends, with elapsed time,
// and every stillEvery a line for each change still running, so a long
// stop or image unpack never looks like a hang.
type textHooks struct {
	w     io.Writer
	color bool

	mu      sync.Mutex
	started map[resource.Addr]time.Time
	ops     map[resource.Addr]apply.Op
}

const stillEvery = 10 * time.Second

func newTextHooks(w io.Writer, color bool) *textHooks {
	return &textHooks{w: w, color: color, started: map[resource.Addr]time.Time{}, ops: map[resource.Addr]apply.Op{}}
}

func (h *textHooks) PreApply(s apply.Step) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started[s.Addr], h.ops[s.Addr] = time.Now(), s.Op
	fmt.Fprintf(h.w, "%s: %s\n", paint(h.color, "\x1b[1m", s.Addr.String()), opWords[s.Op][0])
}

func (h *textHooks) PostApply(s apply.Step, err error, elapsed time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.started, s.Addr)
	addr := paint(h.color, "\x1b[1m", s.Addr.String())
	if err != nil {
		fmt.Fprintf(h.w, "%s: %s %s after %s: %v\n", addr, opWords[s.Op][1], paint(h.color, "\x1b[31;1m", "failed"), round(elapsed), err)
		return
	}
	fmt.Fprintf(h.w, "%s: %s complete after %s\n", addr, opWords[s.Op][1], round(elapsed))
}

// still reports the changes running for longer than stillEvery.
func (h *textHooks) still(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	addrs := make([]resource.Addr, 0, len(h.started))
	for a := range h.started {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	for _, a := range addrs {
		if el := now.Sub(h.started[a]); el >= stillEvery {
			fmt.Fprintf(h.w, "%s: Still %s [%s elapsed]\n", paint(h.color, "\x1b[1m", a.String()),
				strings.ToLower(opWords[h.ops[a]][0]), el.Round(time.Second))
		}
	}
}

// tick calls still every stillEvery until done is closed.
func (h *textHooks) tick(done <-chan struct{}) {
	t := time.NewTicker(stillEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			h.still(now)
		}
	}
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}

// jsonHooks writes one JSON object per line for scripts.
type jsonHooks struct{ enc *json.Encoder }

func (h *jsonHooks) PreApply(s apply.Step) {
	_ = h.enc.Encode(map[string]any{"type": "change_start", "address": s.Addr.String(), "op": s.Op})
}

func (h *jsonHooks) PostApply(s apply.Step, err error, elapsed time.Duration) {
	ev := map[string]any{"type": "change_complete", "address": s.Addr.String(), "op": s.Op, "elapsed_ms": elapsed.Milliseconds()}
	if err != nil {
		ev["type"], ev["error"] = "change_errored", err.Error()
	}
	_ = h.enc.Encode(ev)
}

func (c *CLI) printOutputs(outputs map[string]cty.Value, jsonOut bool) {
	if len(outputs) == 0 {
		return
	}
	names := sortedKeys(outputs)
	if jsonOut {
		out := map[string]any{}
		for _, n := range names {
			out[n] = jsonValue(outputs[n])
		}
		_ = json.NewEncoder(c.Stdout).Encode(map[string]any{"type": "outputs", "outputs": out})
		return
	}
	fmt.Fprintln(c.Stdout, "\nOutputs:")
	for _, n := range names {
		fmt.Fprintf(c.Stdout, "  %s = %s\n", n, hclValue(outputs[n]))
	}
}

// hclValue renders a value as HCL would write it, on one line.
func hclValue(v cty.Value) string { return plan.FormatValue(v, nil) }

// jsonValue converts a known value to plain JSON; unknown values are null.
func jsonValue(v cty.Value) any {
	if !v.IsWhollyKnown() {
		return nil
	}
	b, err := ctyJSON(v)
	if err != nil {
		return nil
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func sortedKeys(m map[string]cty.Value) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func jsonMarshalIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
