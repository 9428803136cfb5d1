package server_test

import (
	"flag"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"capnproto.org/go/capnp/v3"
	capserver "capnproto.org/go/capnp/v3/server"

	"github.com/sandboxd/sandboxd/daemon/server"
)

// scaleChildEnv marks a child test process that runs one scale test alone
// (see runAlone).
const scaleChildEnv = "SANDBOXD_TEST_ALONE"

// clientLeaks collects capnp's reports of capability clients that were
// garbage-collected without Release. The hook must be installed before
// the first client exists, so TestMain installs it, once.
//
// The hook records where every client is made (its callers' program
// counters) and sets a finalizer on it: it is left out of benchmark runs
// and of the scale test's child process, whose timings it would distort.
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

// The hook itself: a client dropped without Release is reported, naming
// the function that made it (third_party/go-capnp formats where a client
// was made only once it leaks).
func TestAClientDroppedUnreleasedIsReportedWithWhereItWasMade(t *testing.T) {
	if !clientLeaks.installed {
		t.Skip("the client-leak hook is not installed in benchmark runs (TestMain)")
	}
	clientLeaks.Lock()
	seen := len(clientLeaks.msgs)
	clientLeaks.Unlock()
	makeAndDropAClient()
	var got []string
	eventually(t, server.HangGuard, "the dropped client is reported", func() bool {
		runtime.GC()
		clientLeaks.Lock()
		defer clientLeaks.Unlock()
		got = append([]string(nil), clientLeaks.msgs[seen:]...)
		return len(got) > 0
	})
	// Take the report back, so that no other test's check sees it.
	clientLeaks.Lock()
	clientLeaks.msgs = clientLeaks.msgs[:seen]
	clientLeaks.Unlock()
	if len(got) != 1 || !strings.Contains(got[0], "makeAndDropAClient") || !strings.Contains(got[0], "e2e_main_test.go:") {
		t.Errorf("reports %q, want one naming makeAndDropAClient and its file", got)
	}
}

//go:noinline
func makeAndDropAClient() {
	c := capnp.NewClient(capserver.New(nil, nil, nil))
	_ = c
}
