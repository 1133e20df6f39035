package resource

import "errors"

// Sentinel kinds of system fault. Layers wrap them with %w and add context
// (operation, address) on the way up; callers decide with errors.Is, never by
// message text.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrConflict      = errors.New("conflict")
	ErrUnavailable   = errors.New("unavailable")
)
