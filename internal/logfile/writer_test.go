package logfile

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func readLogs(t *testing.T, path string) []Entry {
	t.Helper()
	var out []Entry
	if err := ReadAll(path, func(e Entry) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLinesSplitsAndJoins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := Create(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 5, time.UTC)
	out := &Lines{Stream: "stdout", W: w}
	errs := &Lines{Stream: "stderr", W: w}
	long := strings.Repeat("x", MaxLine+10)
	for _, step := range []struct {
		l    *Lines
		data string
	}{
		{out, "hel"}, {out, "lo\nwor"}, {errs, "oops\n"}, {out, "ld\n\n"}, {out, long + "\n"}, {out, "tail"},
	} {
		if err := step.l.Feed([]byte(step.data), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Flush(now); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var got []string
	for _, e := range readLogs(t, path) {
		if !e.Time.Equal(now) {
			t.Errorf("time %v, want %v", e.Time, now)
		}
		got = append(got, e.Stream[:3]+":"+e.Log)
	}
	want := []string{"std:hello\n", "std:oops\n", "std:world\n", "std:\n", "std:" + long[:MaxLine], "std:" + long[MaxLine:] + "\n", "std:tail"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("entries:\n%q\nwant\n%q", got, want)
	}
}

func TestRotationKeepsNewestFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	w, err := Create(path, 200, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := w.Write(Entry{Log: strconv.Itoa(i) + "\n", Stream: "stdout", Time: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	files := Files(path)
	if len(files) != 3 || files[0] != path+".2" || files[2] != path {
		t.Fatalf("files = %v, want c.log.2, c.log.1, c.log", files)
	}
	for _, f := range files {
		if st, _ := os.Stat(f); st.Size() > 200 {
			t.Errorf("%s is %d bytes, past the 200 limit", f, st.Size())
		}
	}
	// What is kept is the newest, in order, without a gap.
	entries := readLogs(t, path)
	last := -1
	for _, e := range entries {
		n, _ := strconv.Atoi(strings.TrimSpace(e.Log))
		if last >= 0 && n != last+1 {
			t.Fatalf("gap or disorder: %d after %d", n, last)
		}
		last = n
	}
	if last != 39 {
		t.Errorf("last entry %d, want 39", last)
	}
	// Reopening appends to the current file rather than truncating it.
	w, err = Create(path, 200, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Entry{Log: "40\n", Stream: "stdout"}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got := readLogs(t, path)
	if n := len(got); n < 2 || got[n-2].Log != "39\n" || got[n-1].Log != "40\n" {
		t.Errorf("after reopen the log ends %q, want 39 then 40", got[max(0, n-2):])
	}
}

func TestDecodeSkipsTornLines(t *testing.T) {
	r := strings.NewReader("{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-27T12:00:00Z\"}\n{\"log\":\"b\n")
	var got []string
	if err := Decode(r, func(e Entry) error { got = append(got, e.Log); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "a\n" {
		t.Errorf("got %q", got)
	}
}
