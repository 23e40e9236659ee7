package api

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
)

func TestErrorClasses(t *testing.T) {
	cause := errors.New("disk on fire")
	tests := []struct {
		name  string
		err   error
		is    func(error) bool
		ctrd  func(error) bool
		other func(error) bool
	}{
		{"invalid", InvalidArgumentf("bad %s", "input"), IsInvalidArgument, errdefs.IsInvalidArgument, IsNotFound},
		{"not found", NotFoundf("image %s not found", "isol8:x"), IsNotFound, errdefs.IsNotFound, IsConflict},
		{"conflict", Conflictf("busy"), IsConflict, errdefs.IsConflict, IsNotFound},
		{"precondition", FailedPreconditionf("no container"), IsFailedPrecondition, errdefs.IsFailedPrecondition, IsNotFound},
		{"unavailable", Unavailablef("containerd unreachable at %s: start it or install it", "/x.sock"), IsUnavailable, errdefs.IsUnavailable, IsNotFound},
		{"exhausted", Exhaustedf("queue full"), IsExhausted, errdefs.IsResourceExhausted, IsNotFound},
		{"deadline", Deadline(fmt.Errorf("waited: %w", context.DeadlineExceeded)), IsDeadline, errdefs.IsDeadlineExceeded, IsNotFound},
		{"denied", PermissionDeniedf("needs root"), IsPermissionDenied, errdefs.IsPermissionDenied, IsNotFound},
		{"not implemented", NotImplementedf("later"), IsNotImplemented, errdefs.IsNotImplemented, IsNotFound},
		{"wrapped with cause", fmt.Errorf("create sandbox: %w", Unavailable(fmt.Errorf("dial: %w", cause))), IsUnavailable, errdefs.IsUnavailable, IsInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.is(tc.err) || !tc.ctrd(tc.err) {
				t.Errorf("%v: class not recognised (api %v, containerd/errdefs %v)", tc.err, tc.is(tc.err), tc.ctrd(tc.err))
			}
			if tc.other(tc.err) {
				t.Errorf("%v: recognised as another class", tc.err)
			}
		})
	}
	// The message is the user's text, with no class word tacked on.
	for err, want := range map[error]string{
		NotFoundf("image %s not found", "isol8:x"):                                 "image isol8:x not found",
		Unavailablef("containerd unreachable at %s: start it or install it", "/x"): "containerd unreachable at /x: start it or install it",
	} {
		if err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
	}
	// The cause chain is kept.
	err := fmt.Errorf("outer: %w", Unavailable(fmt.Errorf("dial: %w", cause)))
	if !errors.Is(err, cause) {
		t.Error("cause lost")
	}
	if InvalidArgument(nil) != nil {
		t.Error("a nil error must stay nil")
	}
}
