package api

import (
	"errors"
	"fmt"
)

// Error classes. Each helper wraps an error (or a formatted message) so that
// its text stays exactly the user's message while a marker method says its
// class; errors.Is/As still reach the cause. The marker methods are those
// of moby's errdefs, which github.com/containerd/errdefs also recognises,
// so errdefs.IsNotFound(err) and api.IsNotFound(err) agree, in-process and
// (through the status mapping of the server and client) over REST.

type (
	errInvalidArgument    struct{ error }
	errNotFound           struct{ error }
	errConflict           struct{ error }
	errFailedPrecondition struct{ error }
	errUnavailable        struct{ error }
	errExhausted          struct{ error }
	errDeadline           struct{ error }
	errPermissionDenied   struct{ error }
	errNotImplemented     struct{ error }
)

func (errInvalidArgument) InvalidParameter()      {}
func (errNotFound) NotFound()                     {}
func (errConflict) Conflict()                     {}
func (errFailedPrecondition) FailedPrecondition() {}
func (errUnavailable) Unavailable()               {}
func (errExhausted) ResourceExhausted()           {}
func (errDeadline) DeadlineExceeded()             {}
func (errPermissionDenied) Forbidden()            {}
func (errNotImplemented) NotImplemented()         {}
func (e errInvalidArgument) Unwrap() error        { return e.error }
func (e errNotFound) Unwrap() error               { return e.error }
func (e errConflict) Unwrap() error               { return e.error }
func (e errFailedPrecondition) Unwrap() error     { return e.error }
func (e errUnavailable) Unwrap() error            { return e.error }
func (e errExhausted) Unwrap() error              { return e.error }
func (e errDeadline) Unwrap() error               { return e.error }
func (e errPermissionDenied) Unwrap() error       { return e.error }
func (e errNotImplemented) Unwrap() error         { return e.error }

// InvalidArgument marks err as the caller's fault: bad input (HTTP 400).
// A nil err stays nil.
func InvalidArgument(err error) error {
	return wrap(err, func(e error) error { return errInvalidArgument{e} })
}

// NotFound marks err as a missing object (HTTP 404).
func NotFound(err error) error { return wrap(err, func(e error) error { return errNotFound{e} }) }

// Conflict marks err as a clash with the current state (HTTP 409).
func Conflict(err error) error { return wrap(err, func(e error) error { return errConflict{e} }) }

// FailedPrecondition marks err as a request the current state cannot serve
// (for example file access before a persistent sandbox exists).
func FailedPrecondition(err error) error {
	return wrap(err, func(e error) error { return errFailedPrecondition{e} })
}

// Unavailable marks err as a backend that cannot be reached or a stopped
// engine (HTTP 503).
func Unavailable(err error) error { return wrap(err, func(e error) error { return errUnavailable{e} }) }

// Exhausted marks err as a limit reached: a full queue, no free ranges
// (HTTP 429).
func Exhausted(err error) error { return wrap(err, func(e error) error { return errExhausted{e} }) }

// Deadline marks err as work that ran out of time (HTTP 408 or 504).
func Deadline(err error) error { return wrap(err, func(e error) error { return errDeadline{e} }) }

// PermissionDenied marks err as refused for lack of rights (HTTP 403).
func PermissionDenied(err error) error {
	return wrap(err, func(e error) error { return errPermissionDenied{e} })
}

// NotImplemented marks err as a feature this build or platform lacks.
func NotImplemented(err error) error {
	return wrap(err, func(e error) error { return errNotImplemented{e} })
}

// InvalidArgumentf, NotFoundf, ... build the message with fmt.Errorf (so %w
// keeps a cause) and mark it.
func InvalidArgumentf(format string, args ...any) error {
	return InvalidArgument(fmt.Errorf(format, args...))
}
func NotFoundf(format string, args ...any) error  { return NotFound(fmt.Errorf(format, args...)) }
func Conflictf(format string, args ...any) error  { return Conflict(fmt.Errorf(format, args...)) }
func Exhaustedf(format string, args ...any) error { return Exhausted(fmt.Errorf(format, args...)) }
func FailedPreconditionf(format string, args ...any) error {
	return FailedPrecondition(fmt.Errorf(format, args...))
}
func Unavailablef(format string, args ...any) error { return Unavailable(fmt.Errorf(format, args...)) }
func PermissionDeniedf(format string, args ...any) error {
	return PermissionDenied(fmt.Errorf(format, args...))
}
func NotImplementedf(format string, args ...any) error {
	return NotImplemented(fmt.Errorf(format, args...))
}

func wrap(err error, mark func(error) error) error {
	if err == nil {
		return nil
	}
	return mark(err)
}

// IsInvalidArgument, IsNotFound, ... report an error's class from the
// marker methods anywhere in its chain.
func IsInvalidArgument(err error) bool { return has[interface{ InvalidParameter() }](err) }
func IsNotFound(err error) bool        { return has[interface{ NotFound() }](err) }
func IsConflict(err error) bool        { return has[interface{ Conflict() }](err) }
func IsFailedPrecondition(err error) bool {
	return has[interface{ FailedPrecondition() }](err)
}
func IsUnavailable(err error) bool      { return has[interface{ Unavailable() }](err) }
func IsExhausted(err error) bool        { return has[interface{ ResourceExhausted() }](err) }
func IsDeadline(err error) bool         { return has[interface{ DeadlineExceeded() }](err) }
func IsPermissionDenied(err error) bool { return has[interface{ Forbidden() }](err) }
func IsNotImplemented(err error) bool   { return has[interface{ NotImplemented() }](err) }

func has[T any](err error) bool {
	var target T
	return errors.As(err, &target)
}
