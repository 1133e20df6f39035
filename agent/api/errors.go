package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/seed-e88ffcd2/berth/resource"
)

// Kind is the class of an API error, carried in its "kind" field. Each
// kind but invalid and internal is a resource sentinel, so an error keeps
// its errors.Is identity across the socket.
type Kind string

const (
	KindNotFound      Kind = "not_found"      // resource.ErrNotFound, 404
	KindAlreadyExists Kind = "already_exists" // resource.ErrAlreadyExists, 409
	KindConflict      Kind = "conflict"       // resource.ErrConflict, 409
	KindInvalid       Kind = "invalid"        // ErrInvalid: a malformed request, 400 (413, 415)
	KindUnavailable   Kind = "unavailable"    // resource.ErrUnavailable, 503
	KindInternal      Kind = "internal"       // anything else, 500
)

// ErrInvalid is the sentinel of a request the agent refuses as malformed
// or cannot carry out as asked: resource.ErrInvalid itself, so that a
// driver's refusal of a bad argument keeps its kind across the socket.
var ErrInvalid = resource.ErrInvalid

// Error is the JSON body of every error the API answers, and the Go error
// the client returns for it. It unwraps to the sentinel of its kind.
type Error struct {
	Message string `json:"error"`
	Kind    Kind   `json:"kind"`
	// Status is the HTTP status it came with (not sent in the body).
	Status int `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel of the error's kind, nil for internal.
func (e *Error) Unwrap() error {
	switch e.Kind {
	case KindNotFound:
		return resource.ErrNotFound
	case KindAlreadyExists:
		return resource.ErrAlreadyExists
	case KindConflict:
		return resource.ErrConflict
	case KindInvalid:
		return ErrInvalid
	case KindUnavailable:
		return resource.ErrUnavailable
	}
	return nil
}

// Invalid is an error of kind invalid: the request is refused as sent.
func Invalid(format string, args ...any) error {
	return &Error{Message: fmt.Sprintf(format, args...), Kind: KindInvalid, Status: http.StatusBadRequest}
}

// toError classifies err by its sentinel with errors.Is.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		out := *e
		if out.Status == 0 {
			out.Status = statusOf(out.Kind)
		}
		if out.Message != err.Error() {
			// Context added on the way up stays in the message.
			out.Message = err.Error()
		}
		return &out
	}
	kind := KindInternal
	switch {
	case errors.Is(err, resource.ErrNotFound):
		kind = KindNotFound
	case errors.Is(err, resource.ErrAlreadyExists):
		kind = KindAlreadyExists
	case errors.Is(err, resource.ErrConflict):
		kind = KindConflict
	case errors.Is(err, ErrInvalid):
		kind = KindInvalid
	case errors.Is(err, resource.ErrUnavailable):
		kind = KindUnavailable
	}
	return &Error{Message: err.Error(), Kind: kind, Status: statusOf(kind)}
}

func statusOf(k Kind) int {
	switch k {
	case KindNotFound:
		return http.StatusNotFound
	case KindAlreadyExists, KindConflict:
		return http.StatusConflict
	case KindInvalid:
		return http.StatusBadRequest
	case KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// WriteError answers err as a JSON error with the status of its kind.
func WriteError(w http.ResponseWriter, err error) {
	e := toError(err)
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&Error{Message: "encoding the answer: " + err.Error(), Kind: KindInternal})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
