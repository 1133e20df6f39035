// Package logfile is the format of container logs, shared by the monitor
// that writes them and the commands that read them: JSON lines as Docker's
// json-file driver writes them ({"log":"…\n","stream":"stdout","time":…}),
// in a file rotated by size into PATH.1, PATH.2, … (PATH.1 the newest of
// the rotated ones).
//
// It uses the standard library only: the per-container monitor imports it,
// and every package it pulls in costs memory in every monitor.
package logfile

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"
)

// Entry is one line (or, for a line longer than MaxLine, one piece of it)
// of a container's output.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// MaxLine is the longest piece of a line written as one entry, as in
// Docker; a longer line is split, and only its last piece ends in "\n".
const MaxLine = 16 * 1024

// Writer appends entries to a log file and rotates it by size.
type Writer struct {
	path     string
	maxSize  int64
	maxFiles int
	f        *os.File
	size     int64
	buf      []byte
}

// Create opens path for appending. Once the file would grow past maxSize
// bytes it is rotated, keeping maxFiles files in all (the current one
// included); maxSize 0 never rotates.
func Create(path string, maxSize int64, maxFiles int) (*Writer, error) {
	if maxFiles < 1 {
		maxFiles = 1
	}
	w := &Writer{path: path, maxSize: maxSize, maxFiles: maxFiles}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, st.Size()
	return nil
}

// Write appends one entry.
func (w *Writer) Write(e Entry) error {
	w.buf = w.buf[:0]
	w.buf = append(w.buf, `{"log":`...)
	w.buf = appendJSONString(w.buf, e.Log)
	w.buf = append(w.buf, `,"stream":`...)
	w.buf = appendJSONString(w.buf, e.Stream)
	w.buf = append(w.buf, `,"time":"`...)
	w.buf = e.Time.UTC().AppendFormat(w.buf, time.RFC3339Nano)
	w.buf = append(w.buf, "\"}\n"...)
	if w.f == nil {
		// A rotation that failed (a full disk) left no file: try again
		// rather than lose everything after it.
		if err := w.open(); err != nil {
			return err
		}
	}
	if w.maxSize > 0 && w.size > 0 && w.size+int64(len(w.buf)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	return err
}

// rotate shifts PATH.N-1 to PATH.N … PATH to PATH.1 and starts PATH anew.
// Readers following PATH notice the new inode and move on.
func (w *Writer) rotate() error {
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return err
	}
	if w.maxFiles == 1 {
		if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return w.open()
	}
	for i := w.maxFiles - 1; i >= 1; i-- {
		from := w.path
		if i > 1 {
			from = w.path + "." + strconv.Itoa(i-1)
		}
		if err := os.Rename(from, w.path+"."+strconv.Itoa(i)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return w.open()
}

// Close closes the file.
func (w *Writer) Close() error {
	if w.f == nil {
		return nil
	}
	return w.f.Close()
}

// appendJSONString appends s as a JSON string, invalid UTF-8 replaced.
func appendJSONString(b []byte, s string) []byte {
	data, _ := json.Marshal(s) // a string always marshals
	return append(b, data...)
}

// Files lists the files of the log at path that exist, oldest first.
//
// A rotation renames PATH.N-1 to PATH.N down to PATH to PATH.1, so while
// one runs a single index may be missing with older files beyond it; one
// gap is looked past, or a reader listing mid-rotation would skip a file.
func Files(path string) []string {
	var rotated []string
	for i, misses := 1, 0; misses < 2; i++ {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err != nil {
			misses++
			continue
		}
		misses = 0
		rotated = append(rotated, p)
	}
	out := make([]string, 0, len(rotated)+1)
	for i := len(rotated) - 1; i >= 0; i-- {
		out = append(out, rotated[i])
	}
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	}
	return out
}

// ReadAll calls fn for every entry of the log at path, oldest first. A
// line that does not parse (a torn write at a crash) is skipped.
func ReadAll(path string, fn func(Entry) error) error {
	for _, p := range Files(path) {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // rotated away while reading
		} else if err != nil {
			return err
		}
		err = Decode(f, fn)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Decode calls fn for every entry read from r.
func Decode(r io.Reader, fn func(Entry) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*MaxLine+1024)
	for sc.Scan() {
		var e Entry
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading log: %w", err)
	}
	return nil
}

// Lines turns one stream's raw output into entries: one per line, a line
// longer than MaxLine in pieces, and what is left without a newline at the
// end flushed as it is.
type Lines struct {
	Stream  string
	W       *Writer
	pending []byte
}

// Feed writes the complete lines in data and keeps the rest for later.
func (l *Lines) Feed(data []byte, now time.Time) error {
	l.pending = append(l.pending, data...)
	for {
		i := indexNewline(l.pending)
		if i < 0 {
			break
		}
		if err := l.emit(l.pending[:i+1], now); err != nil {
			return err
		}
		l.pending = l.pending[i+1:]
	}
	if len(l.pending) >= MaxLine {
		if err := l.emit(l.pending, now); err != nil {
			return err
		}
		l.pending = l.pending[:0]
	}
	// Reuse the buffer once drained rather than growing it forever.
	if len(l.pending) == 0 {
		l.pending = l.pending[:0:cap(l.pending)]
	}
	return nil
}

// Flush writes what is left without a newline.
func (l *Lines) Flush(now time.Time) error {
	if len(l.pending) == 0 {
		return nil
	}
	err := l.emit(l.pending, now)
	l.pending = l.pending[:0]
	return err
}

func (l *Lines) emit(b []byte, now time.Time) error {
	for len(b) > MaxLine {
		if err := l.W.Write(Entry{Log: string(b[:MaxLine]), Stream: l.Stream, Time: now}); err != nil {
			return err
		}
		b = b[MaxLine:]
	}
	return l.W.Write(Entry{Log: string(b), Stream: l.Stream, Time: now})
}

func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}
