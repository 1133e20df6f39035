package logfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"time"
)

// Options choose what a Reader reads, as berth logs --tail, --since and
// --follow do.
type Options struct {
	// Tail keeps only the last Tail entries the log holds when the
	// reader opens; negative means all of them.
	Tail int
	// Since skips entries older than it; zero skips none.
	Since time.Time
	// Follow keeps reading entries as they are written, across
	// rotations, until Stop is closed and the log is drained, or the
	// context given to Next ends.
	Follow bool
	// Stop, once closed, tells a follow that the writer is gone: what is
	// left in the log is read, then Next returns io.EOF. Nil never stops.
	Stop <-chan struct{}
	// Poll is how often a follow looks for new entries (default 100ms).
	Poll time.Duration
}

// maxPending bounds a line still being written; a longer one (not
// something Writer makes) is dropped.
const maxPending = 8*MaxLine + 4096

// Reader reads a log's entries oldest first: the rotated files, then the
// current one, then — following — what is written next. A rotated file is
// recognised by its inode: the reader finishes the file it holds, then
// reads whatever newer files appeared, then the new current file.
type Reader struct {
	path string
	o    Options
	segs []*segment // opened files still to read, oldest first
	cur  *segment   // the one being read (the last one, when following)
	seen map[uint64]bool
	done bool
}

type segment struct {
	f       *os.File
	br      *bufio.Reader
	ino     uint64
	off     int64 // bytes consumed
	pending []byte
}

// Open opens the log at path. A log that does not exist yet reads as empty
// (and, followed, waits for its first entry).
func Open(path string, o Options) (*Reader, error) {
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	r := &Reader{path: path, o: o, seen: map[uint64]bool{}}
	segs, err := snapshot(path)
	if err != nil {
		return nil, err
	}
	for _, s := range segs {
		r.seen[s.ino] = true
	}
	if o.Tail >= 0 {
		var err error
		if segs, err = tail(segs, o.Tail); err != nil {
			r.closeAll(segs)
			return nil, err
		}
	}
	r.segs = segs
	return r, nil
}

// snapshot opens every file of the log, oldest first, as one consistent
// picture: a rotation renames every file, so one that ran while the files
// were listed and opened one by one would have them opened out of order (a
// file listed at PATH.2 opened after it moved to PATH.3) or missed. After
// opening, a new listing must name the same files and each name still hold
// the file opened under it; otherwise it starts over.
func snapshot(path string) ([]*segment, error) {
	for attempt := 0; ; attempt++ {
		files := Files(path)
		segs := make([]*segment, 0, len(files))
		stable := true
		for _, p := range files {
			s, err := openSegment(p)
			if errors.Is(err, fs.ErrNotExist) {
				stable = false // rotated away meanwhile
				continue
			} else if err != nil {
				closeSegments(segs)
				return nil, err
			}
			segs = append(segs, s)
		}
		// The listing itself may have been cut short by a rotation that
		// moved the oldest file past where it looked: list again.
		if stable && !slices.Equal(files, Files(path)) {
			stable = false
		}
		if stable {
			for i, p := range files {
				if st, err := os.Stat(p); err != nil || inode(st) != segs[i].ino {
					stable = false
					break
				}
			}
		}
		if stable || attempt >= 100 {
			return segs, nil
		}
		closeSegments(segs)
		time.Sleep(time.Millisecond)
	}
}

func openSegment(p string) (*segment, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &segment{f: f, br: bufio.NewReaderSize(f, 64*1024), ino: inode(st)}, nil
}

func inode(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}

// tail keeps the files holding the last n complete lines and places the
// first of them at its first kept line.
func tail(segs []*segment, n int) ([]*segment, error) {
	need := n
	for i := len(segs) - 1; i >= 0; i-- {
		off, lines, err := tailStart(segs[i].f, need)
		if err != nil {
			return segs, err
		}
		if lines >= need {
			for _, s := range segs[:i] {
				s.f.Close()
			}
			if _, err := segs[i].f.Seek(off, io.SeekStart); err != nil {
				return segs, err
			}
			segs[i].off = off
			return segs[i:], nil
		}
		need -= lines
	}
	return segs, nil
}

// tailStart finds where the last n complete lines of f start, reading
// backwards. lines is how many complete lines it found, at most n; fewer
// than n means the whole file is kept (offset 0).
func tailStart(f *os.File, n int) (off int64, lines int, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 32*1024)
	newlines := 0
	for end := st.Size(); end > 0; {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			newlines++
			if newlines == n+1 {
				return start + int64(i) + 1, n, nil
			}
		}
		end = start
	}
	return 0, newlines, nil
}

// Next returns the next entry, io.EOF when there is none left (for a
// follow: once Stop is closed and the log drained), or ctx's error.
func (r *Reader) Next(ctx context.Context) (Entry, error) {
	for {
		if r.done {
			return Entry{}, io.EOF
		}
		if e, ok, err := r.readOne(); err != nil {
			return Entry{}, err
		} else if ok {
			return e, nil
		}
		// Every open file is read to its end.
		if !r.o.Follow {
			r.done = true
			continue
		}
		stopped := false
		select {
		case <-r.o.Stop:
			stopped = true
		default:
		}
		if !stopped {
			// Wait for more.
			t := time.NewTimer(r.o.Poll)
			select {
			case <-ctx.Done():
				t.Stop()
				return Entry{}, ctx.Err()
			case <-r.o.Stop:
			case <-t.C:
			}
			t.Stop()
		}
		more, err := r.rotated()
		if err != nil {
			return Entry{}, err
		}
		if stopped && !more {
			// The writer was gone before this last look, and the look
			// found nothing new: the log is drained.
			if e, ok, err := r.readOne(); err != nil || ok {
				return e, err
			}
			r.done = true
		}
	}
}

// readOne returns the next complete entry of the open files, ok false when
// they are all read to their ends (the last one stays open for a follow).
func (r *Reader) readOne() (Entry, bool, error) {
	for {
		if r.cur == nil {
			if len(r.segs) == 0 {
				return Entry{}, false, nil
			}
			r.cur = r.segs[0]
			r.segs = r.segs[1:]
		}
		s := r.cur
		line, err := s.br.ReadSlice('\n')
		s.off += int64(len(line))
		switch {
		case err == nil:
			var full []byte
			if len(s.pending) > 0 {
				full = append(s.pending, line...)
				s.pending = s.pending[:0]
			} else {
				full = line
			}
			if e, ok := r.decode(full); ok {
				return e, true, nil
			}
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			if len(s.pending)+len(line) <= maxPending {
				s.pending = append(s.pending, line...)
			} else {
				s.pending = s.pending[:0]
			}
			continue
		case errors.Is(err, io.EOF):
			// A line being written is kept until its end arrives.
			if len(line) > 0 && len(s.pending)+len(line) <= maxPending {
				s.pending = append(s.pending, line...)
			}
			if len(r.segs) > 0 {
				// An older file is complete: its torn end is dropped.
				s.f.Close()
				r.cur = nil
				continue
			}
			return Entry{}, false, nil
		default:
			return Entry{}, false, err
		}
	}
}

func (r *Reader) decode(line []byte) (Entry, bool) {
	var e Entry
	if json.Unmarshal(bytes.TrimSpace(line), &e) != nil {
		return e, false // a torn line from a crash
	}
	if !r.o.Since.IsZero() && e.Time.Before(r.o.Since) {
		return e, false
	}
	return e, true
}

// rotated looks at the log's path: when it names a file other than the
// one being read, the newer files are queued after it, and more is true.
// A file cut shorter than what was read is read again from its start.
func (r *Reader) rotated() (more bool, err error) {
	st, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // between a rotation's rename and create
	} else if err != nil {
		return false, err
	}
	if r.cur != nil && inode(st) == r.cur.ino {
		if st.Size() < r.cur.off {
			if _, err := r.cur.f.Seek(0, io.SeekStart); err != nil {
				return false, err
			}
			r.cur.br.Reset(r.cur.f)
			r.cur.off, r.cur.pending = 0, r.cur.pending[:0]
			return true, nil
		}
		return false, nil
	}
	// Every file not seen before is newer than all that were: the first
	// look (Open) saw every file there was, and each look after it queues
	// every new one. Going by what was seen rather than by where the file
	// being read now stands keeps a file that a rotation moved during the
	// look from being taken for an older one.
	segs, err := snapshot(r.path)
	if err != nil {
		return false, err
	}
	for _, s := range segs {
		if r.seen[s.ino] {
			s.f.Close()
			continue
		}
		r.seen[s.ino] = true
		r.segs = append(r.segs, s)
		more = true
	}
	return more, nil
}

// Close closes the open files.
func (r *Reader) Close() error {
	if r.cur != nil {
		r.cur.f.Close()
		r.cur = nil
	}
	r.closeAll(r.segs)
	r.segs = nil
	r.done = true
	return nil
}

func (r *Reader) closeAll(segs []*segment) { closeSegments(segs) }

func closeSegments(segs []*segment) {
	for _, s := range segs {
		s.f.Close()
	}
}
