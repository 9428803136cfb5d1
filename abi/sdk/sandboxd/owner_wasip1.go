//go:build wasip1

package sandboxd

import (
	"errors"
	"fmt"
	"sync"
)

// ErrHandleTaken is the error (wrapped) of File, NetConn, NetListener,
// DialFunc and Supervisor for a named handle that an earlier call of one
// of them already took. A named handle has one owner, the value that
// call returned, whose Close closes the handle: a second owner of the
// same handle would close it under the first.
var ErrHandleTaken = errors.New("handle already taken")

var (
	ownersMu sync.Mutex
	owners   = map[string]string{} // handle name → the call that took it
)

// take records the call by as the owner of the handle named name, or
// fails with ErrHandleTaken if a call already owns it. A call that then
// fails and leaves the handle open undoes it with release.
func take(name, by string) (release func(), err error) {
	ownersMu.Lock()
	defer ownersMu.Unlock()
	if prev, ok := owners[name]; ok {
		return nil, fmt.Errorf("sandboxd: %s(%q): %w by an earlier %s, whose result owns it and closes it on Close: use that result, or wrap a new handle from sandboxd.Dup", by, name, ErrHandleTaken, prev)
	}
	owners[name] = by
	return func() {
		ownersMu.Lock()
		defer ownersMu.Unlock()
		delete(owners, name)
	}, nil
}
