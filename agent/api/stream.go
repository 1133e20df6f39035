package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/seed-e88ffcd2/berth/resource"
)

// Streaming endpoints (logs, events, stats) answer JSON lines, one value a
// line, flushed as each is written, until the stream ends or the client
// goes away. An error found before the first line is an ordinary JSON
// error answer; one found later ends the stream with a last line
// {"error": …, "kind": …} (see LineWriter.Fail), which Lines returns as
// an *Error.

// LineWriter writes one streaming answer.
type LineWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	sw      *statusWriter // the Server's, when it serves w
	started bool
}

// NewLineWriter starts a JSON-lines answer on w; nothing is sent before the
// first Write. When a Server serves w, the request's context ends once the
// server's Shutdown begins, so a stream that waits for more (a follow)
// ends then instead of holding the shutdown until its timeout.
func NewLineWriter(w http.ResponseWriter) *LineWriter {
	sw := statusWriterOf(w)
	if sw != nil {
		sw.streaming()
	}
	return &LineWriter{w: w, rc: http.NewResponseController(w), sw: sw}
}

// Write sends v as one line and flushes it. An error means the client is
// gone: the handler stops.
func (l *LineWriter) Write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	l.start()
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return l.rc.Flush()
}

func (l *LineWriter) start() {
	if l.started {
		return
	}
	l.started = true
	l.w.Header().Set("Content-Type", "application/x-ndjson")
	l.w.Header().Set("X-Content-Type-Options", "nosniff")
	l.w.WriteHeader(http.StatusOK)
	_ = l.rc.Flush()
}

// Start sends the answer's headers at once, so the client knows the
// stream is open before its first line (a follow that waits).
func (l *LineWriter) Start() { l.start() }

// Fail ends the answer with err: an ordinary JSON error before the first
// line, a last error line after it.
func (l *LineWriter) Fail(err error) {
	if l.sw != nil && l.sw.shutDown() {
		err = resource.Errorf(resource.ErrUnavailable, "the agent is shutting down: the stream ended")
	}
	if !l.started {
		WriteError(l.w, err)
		return
	}
	_ = l.Write(toError(err))
}

// Lines reads a streaming answer.
type Lines struct {
	body io.ReadCloser
	dec  *json.Decoder
}

// Stream sends a request without a body and returns its JSON-lines
// answer; an error answer is returned as *Error, as Do does.
func (c *Client) Stream(ctx context.Context, method, path string) (*Lines, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://berth"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ce *connectError
		if errors.As(err, &ce) {
			return nil, ce
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readAnswer(resp, nil)
	}
	return &Lines{body: resp.Body, dec: json.NewDecoder(resp.Body)}, nil
}

// Next decodes the next line into v. It returns io.EOF at the stream's
// end, and the *Error of an error line.
func (l *Lines) Next(v any) error {
	var raw json.RawMessage
	if err := l.dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("reading the agent's stream: %w", err)
	}
	var e Error
	if json.Unmarshal(raw, &e) == nil && e.Message != "" && e.Kind != "" {
		e.Status = statusOf(e.Kind)
		return &e
	}
	return json.Unmarshal(raw, v)
}

// Close ends the stream: the agent sees the client go.
func (l *Lines) Close() error { return l.body.Close() }
