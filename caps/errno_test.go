package caps

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// A guest's table being full and the host process being out of
// descriptors are different limits with different cures, so the guest
// gets different errnos: EMFILE for its own table, ENFILE for the host's,
// however the host's error is wrapped.
func TestErrnoOfTellsTheGuestsDescriptorLimitFromTheHosts(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Errno
	}{
		{EMFILE, EMFILE},
		{fmt.Errorf("insert: %w", EMFILE), EMFILE},
		{syscall.EMFILE, ENFILE},
		{&os.PathError{Op: "openat", Path: "f", Err: syscall.EMFILE}, ENFILE},
		{os.NewSyscallError("accept4", syscall.EMFILE), ENFILE},
		{syscall.ENFILE, ENFILE},
	} {
		if got := ErrnoOf(c.err); got != c.want {
			t.Errorf("ErrnoOf(%#v) = %v, want %v", c.err, got, c.want)
		}
	}
}
