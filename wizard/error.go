package wizard

import (
	"errors"
	"fmt"
)

// Error codes: what kind of failure, so that one place (the web layer's
// error handler) can map them to statuses and log only internal ones.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAUTHORIZED = "unauthorized"
	EINTERNAL     = "internal"
)

// Error is a failure with a code and a message fit for the person who
// caused it.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: the *Error's, EINVALID for an
// AnswerError, otherwise EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	var ae *AnswerError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	case errors.As(err, &ae):
		return EINVALID
	}
	return EINTERNAL
}

// ErrorMessage returns what may be shown to people for err: internal
// details are not.
func ErrorMessage(err error) string {
	var e *Error
	var ae *AnswerError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	case errors.As(err, &ae):
		return "That answer no longer fits this case (it may have moved on in another window). The page shows where it is now."
	}
	return "Something went wrong on our side. Please try again."
}
