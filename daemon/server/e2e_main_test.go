package server_test

import (
	"flag"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"capnproto.org/go/capnp/v3"
)

// scaleChildEnv marks a child test process that runs one scale test alone
// (see runAlone).
const scaleChildEnv = "SANDBOXD_TEST_ALONE"

// clientLeaks collects capnp's reports of capability clients that were
// garbage-collected without Release. The hook must be installed before
// the first client exists, so TestMain installs it, once.
//
// The hook records a stack for every client created, which costs more
// than a launch and serialises each connection behind it: it is left out
// of benchmark runs and of the scale test's child process, whose timings
// and goroutine counts it would distort.
var clientLeaks struct {
	sync.Mutex
	installed bool
	msgs      []string
}

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(scaleChildEnv) == "" && flag.Lookup("test.bench").Value.String() == "" {
		capnp.SetClientLeakFunc(func(msg string) {
			clientLeaks.Lock()
			clientLeaks.msgs = append(clientLeaks.msgs, msg)
			clientLeaks.Unlock()
		})
		clientLeaks.installed = true
	}
	os.Exit(m.Run())
}

// watchClientLeaks returns a check, run when the test ends, that fails the
// test if a capability client leaked while it ran.
func watchClientLeaks(t testing.TB) func() {
	if !clientLeaks.installed {
		return func() {}
	}
	clientLeaks.Lock()
	seen := len(clientLeaks.msgs)
	clientLeaks.Unlock()
	return func() {
		// Finalizers run after a collection finds the garbage; give them
		// a few chances.
		for i := 0; i < 3; i++ {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		clientLeaks.Lock()
		defer clientLeaks.Unlock()
		for _, m := range clientLeaks.msgs[seen:] {
			t.Errorf("capability client leaked: %s", m)
		}
	}
}
