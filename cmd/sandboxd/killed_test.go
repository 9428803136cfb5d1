package main

import (
	"testing"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/client"
)

// launch maps a daemon guest's status to an exit code through run's
// exitStatus, so the reason a timeout gives must read the same on both
// sides of the wire: 124 for both.
func TestTimeoutReasonIsOneOnBothSidesOfTheWire(t *testing.T) {
	if abi.KilledByTimeout != client.KilledByTimeout {
		t.Fatalf("abi says %q, client %q", abi.KilledByTimeout, client.KilledByTimeout)
	}
	st := abi.ExitStatus{Code: 137, Killed: client.KilledByTimeout}
	if code := exitStatus(st, 0); code != exitTimeout {
		t.Fatalf("a guest killed by its timeout exits %d, want %d", code, exitTimeout)
	}
}
