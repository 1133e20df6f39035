package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBody is the largest request body the API reads.
const MaxBody = 1 << 20

// DecodeRequest decodes r's body into v, strictly: Content-Type
// application/json, at most MaxBody bytes, no field v does not have,
// exactly one JSON object. An empty body leaves v as it is (a request
// without parameters). Its errors are of kind invalid and say what to fix.
func DecodeRequest(r *http.Request, v any) error {
	return decode(r.Header.Get("Content-Type"), r.Body, MaxBody, v)
}

func decode(contentType string, body io.Reader, limit int64, v any) error {
	var b []byte
	if body != nil {
		var err error
		b, err = io.ReadAll(io.LimitReader(body, limit+1))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return bodyTooLarge(limit)
			}
			return Invalid("request body: %v", err)
		}
	}
	if int64(len(b)) > limit {
		return bodyTooLarge(limit)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return &Error{
			Message: fmt.Sprintf("request body: Content-Type must be application/json, not %q", contentType),
			Kind:    KindInvalid,
			Status:  http.StatusUnsupportedMediaType,
		}
	}
	if b[0] != '{' {
		return Invalid("request body: must be a JSON object, not %s", jsonKind(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(b, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Invalid("request body: more than one JSON value (send exactly one object)")
	}
	return nil
}

func bodyTooLarge(limit int64) error {
	return &Error{
		Message: fmt.Sprintf("request body: larger than %d bytes", limit),
		Kind:    KindInvalid,
		Status:  http.StatusRequestEntityTooLarge,
	}
}

// decodeError turns encoding/json's errors into messages that name the
// field or the byte.
func decodeError(b []byte, err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return Invalid("request body: invalid JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return Invalid("request body: must be a JSON object, not a JSON %s", typ.Value)
		}
		return Invalid("request body: field %q must be %s, not a JSON %s", typ.Field, goTypeWord(typ.Type.String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return Invalid("request body: the JSON ends after %d bytes, before the object is closed", len(b))
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return Invalid("request body: %s", msg)
}

// goTypeWord names a Go type the way a JSON user thinks of it.
func goTypeWord(t string) string {
	switch {
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "map["):
		return "an object"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint") || strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	}
	return "a " + t
}

func jsonKind(b []byte) string {
	switch b[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	if b[0] == '-' || b[0] >= '0' && b[0] <= '9' {
		return "a number"
	}
	return "invalid JSON"
}
