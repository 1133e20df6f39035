package resource

import (
	"errors"
	"fmt"
)

// Sentinel kinds of system fault. Layers wrap them with %w and add context
// (operation, address) on the way up; callers decide with errors.Is, never by
// message text.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrConflict      = errors.New("conflict")
	ErrUnavailable   = errors.New("unavailable")
	// ErrInvalid is a request that cannot be carried out as asked (a bad
	// argument to an imperative command), as opposed to a configuration
	// mistake, which is an HCL diagnostic.
	ErrInvalid = errors.New("invalid")
)

// Errorf returns an error of a sentinel kind whose message is only the
// formatted text: errors.Is(err, kind) holds, and the user reads no
// trailing ": conflict".
func Errorf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}

type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }
