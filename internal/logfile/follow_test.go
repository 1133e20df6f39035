package logfile

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// numbered writes entries "0\n" … "n-1\n", a second apart from t0, into a
// log rotated every maxSize bytes.
func numbered(t *testing.T, path string, n int, maxSize int64, maxFiles int) {
	t.Helper()
	w, err := Create(path, maxSize, maxFiles)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range n {
		if err := w.Write(Entry{Log: strconv.Itoa(i) + "\n", Stream: "stdout", Time: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// readNumbers reads a reader to its end and returns the entries' numbers.
func readNumbers(t *testing.T, r *Reader, ctx context.Context) []int {
	t.Helper()
	var out []int
	for {
		e, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v (after %v)", err, out)
		}
		n, err := strconv.Atoi(strings.TrimSpace(e.Log))
		if err != nil {
			t.Fatalf("entry %q", e.Log)
		}
		out = append(out, n)
	}
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTailAndSinceAcrossRotatedFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	numbered(t, path, 60, 400, 20) // several files, none dropped
	if n := len(Files(path)); n < 4 {
		t.Fatalf("%d files, want several", n)
	}
	for _, tc := range []struct {
		name string
		o    Options
		want []int
	}{
		{"all", Options{Tail: -1}, span(0, 60)},
		{"tail 0", Options{Tail: 0}, nil},
		{"tail 1", Options{Tail: 1}, span(59, 60)},
		{"tail 25 spans files", Options{Tail: 25}, span(35, 60)},
		{"tail more than there is", Options{Tail: 1000}, span(0, 60)},
		{"since", Options{Tail: -1, Since: t0.Add(50 * time.Second)}, span(50, 60)},
		{"since and tail: the last of those since", Options{Tail: 3, Since: t0.Add(50 * time.Second)}, span(57, 60)},
		{"tail within since", Options{Tail: 30, Since: t0.Add(50 * time.Second)}, span(50, 60)},
		{"since after everything", Options{Tail: -1, Since: t0.Add(time.Hour)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Open(path, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := readNumbers(t, r, context.Background()); !equal(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestMissingLogReadsEmpty(t *testing.T) {
	r, err := Open(filepath.Join(t.TempDir(), "none.log"), Options{Tail: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := readNumbers(t, r, context.Background()); len(got) != 0 {
		t.Errorf("got %v", got)
	}
}

// TestFollowAcrossRotation follows a log while a writer rotates it many
// times: every entry arrives once, in order, and the follow ends once the
// writer is gone (Stop) and the log is drained.
func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	numbered(t, path, 10, 300, 1000) // entries before the follow starts
	stop := make(chan struct{})
	r, err := Open(path, Options{Tail: 2, Follow: true, Stop: stop, Poll: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const total = 400
	go func() {
		defer close(stop)
		w, err := Create(path, 300, 1000)
		if err != nil {
			t.Error(err)
			return
		}
		defer w.Close()
		for i := 10; i < total; i++ {
			if err := w.Write(Entry{Log: strconv.Itoa(i) + "\n", Stream: "stdout", Time: time.Now()}); err != nil {
				t.Error(err)
				return
			}
			if i%20 == 0 {
				time.Sleep(3 * time.Millisecond)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := readNumbers(t, r, ctx)
	if want := span(8, total); !equal(got, want) {
		t.Errorf("followed %d entries, want %d in order:\n%v", len(got), len(want), got)
	}
	if n := len(Files(path)); n < 10 {
		t.Errorf("only %d files: the writer did not rotate enough to test anything", n)
	}
}

// TestFollowWaitsForWholeLines: a line written in two pieces is read once
// it is complete; a cancelled context ends the follow.
func TestFollowWaitsForWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := Open(path, Options{Tail: -1, Follow: true, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	line := `{"log":"whole\n","stream":"stderr","time":"2026-11-27T12:00:00Z"}` + "\n"
	f.WriteString(line[:20])
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if _, err := r.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on half a line: %v, want the deadline", err)
	}
	cancel()
	f.WriteString(line[20:])
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := r.Next(ctx)
	if err != nil || e.Log != "whole\n" || e.Stream != "stderr" || !e.Time.Equal(t0) {
		t.Fatalf("Next: %+v %v", e, err)
	}
}

// TestFollowOfStoppedLogEnds: following a log whose writer is already gone
// prints what there is and ends, as docker logs -f does for an exited
// container.
func TestFollowOfStoppedLogEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	numbered(t, path, 5, 0, 1)
	stop := make(chan struct{})
	close(stop)
	r, err := Open(path, Options{Tail: -1, Follow: true, Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got := readNumbers(t, r, ctx); !equal(got, span(0, 5)) {
		t.Errorf("got %v", got)
	}
}
