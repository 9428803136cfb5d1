package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// A Go guest reads whole the longest notice the daemon sends it for a
// handle: one named with the longest name SendCap takes. (The SDK reads
// notices up to the longest datagram a channel carries: its own tests,
// abi/sdk/sandboxd, cover those the daemon does not send.)
func TestAGoGuestReceivesTheLongestNoticeTheDaemonSends(t *testing.T) {
	s := newSupervisor(t)
	m, err := s.Compile(context.Background(), "goanswers", abitest.Go(t, "daemon/testdata/guests/goanswers"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Release)
	out := &output{wrote: make(chan struct{}, 1)}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Args: []string{"notices"}, SupervisorChannel: true, Stdout: out, Stderr: out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Kill("test over"); <-g.Done() })
	h := &caps.Holder{ID: "test"}
	obj := s.k.Mint(h, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "obj", "test")
	defer s.k.Close(obj)
	for _, size := range []int{1, MaxGuestName} {
		if _, err := g.SendCap(context.Background(), obj, strings.Repeat("n", size)); err != nil {
			t.Fatalf("sending a capability named with %d bytes: %v", size, err)
		}
		awaitLineOrExit(t, g, out, fmt.Sprintf("notice delegate %s name=%d bytes handle=true\n", obj.Kind(), size))
	}
}

// awaitLineOrExit waits until g's output holds want, and fails if g
// exits without having written it (or has not after HangGuard).
func awaitLineOrExit(t *testing.T, g *Guest, out *output, want string) {
	t.Helper()
	deadline := time.After(HangGuard)
	for !strings.Contains(out.String(), want) {
		select {
		case <-out.wrote:
		case <-deadline:
			t.Fatalf("output %q has no %q after %v", out.String(), want, HangGuard)
		case <-g.Done():
			if !strings.Contains(out.String(), want) {
				t.Fatalf("guest exited %+v; output %q has no %q", g.Wait(), out.String(), want)
			}
		}
	}
}
