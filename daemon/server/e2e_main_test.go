package server_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"capnproto.org/go/capnp/v3"

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
	makeAndDropAClient()
	mine := func(m string) bool { return strings.Contains(m, "makeAndDropAClient") }
	var got []string
	eventually(t, server.HangGuard, "the dropped client is reported", func() bool {
		runtime.GC()
		clientLeaks.Lock()
		defer clientLeaks.Unlock()
		got = slices.DeleteFunc(slices.Clone(clientLeaks.msgs), func(m string) bool { return !mine(m) })
		return len(got) > 0
	})
	// Take this report back, and only it, so that no other test's check
	// sees it and no other test's leak is lost.
	clientLeaks.Lock()
	clientLeaks.msgs = slices.DeleteFunc(clientLeaks.msgs, mine)
	clientLeaks.Unlock()
	if len(got) != 1 || !strings.Contains(got[0], "e2e_main_test.go:") {
		t.Errorf("reports %q, want one naming makeAndDropAClient and its file", got)
	}
}

//go:noinline
func makeAndDropAClient() {
	c := capnp.NewClient(idleHook{})
	_ = c
}

// idleHook is a capability that answers nothing and runs no goroutine, so
// that a client of it left unreleased leaves nothing running.
type idleHook struct{}

func (idleHook) Send(context.Context, capnp.Send) (*capnp.Answer, capnp.ReleaseFunc) {
	return capnp.ErrorAnswer(capnp.Method{}, errors.New("idle")), func() {}
}
func (idleHook) Recv(context.Context, capnp.Recv) capnp.PipelineCaller { return nil }
func (idleHook) Brand() capnp.Brand                                    { return capnp.Brand{} }
func (idleHook) Shutdown()                                             {}
func (idleHook) String() string                                        { return "idleHook" }
